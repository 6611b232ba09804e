"""Builders compose: every override key of every protocol reaches the process port it names; unknown keys are refused."""

import pytest
from aiida import orm
from ase.build import bulk

from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows import (
    ActiveLearningWorkChain,
    DynamicTrainingWorkChain,
    EnsembleWorkChain,
    ExplorationWorkChain,
    HarmonicWorkChain,
    LabelWorkChain,
    LifetimesWorkChain,
    NEBWorkChain,
    PerturbativeWorkChain,
    ValidationMDWorkChain,
)

from .conftest import emt_cu_frames

OPTIONS = {'max_wallclock_seconds': 77, 'resources': {'num_mpiprocs_per_machine': 2}}
RESOURCES = {'num_machines': 1, 'num_mpiprocs_per_machine': 2}  # the protocol's num_machines is kept


def value(node):
    """The plain value of a builder entry (a node, a namespace or a plain dict)."""
    if isinstance(node, orm.Dict):
        return node.get_dict()
    if isinstance(node, orm.List):
        return node.get_list()
    if isinstance(node, (orm.Int, orm.Float, orm.Str, orm.Bool)):
        return node.value
    return node


#: Per workchain: override key -> (override value, where it lands in the builder, the value expected there).
CASES = {
    LabelWorkChain: {
        'batch_size': (3, lambda b: b.batch_size, 3),
        'max_restarts': (2, lambda b: b.max_restarts, 2),
        'settings': ({'max_seconds': 50}, lambda b: b.settings['max_seconds'], 50),
        'options': ({'queue_name': 'debug'}, lambda b: b.options['queue_name'], 'debug'),
        'engines': ({'emt': {'fixture': 1}}, lambda b: b.parameters, {'fixture': 1}),
    },
    EnsembleWorkChain: {
        'n_sub': (2, lambda b: b.n_sub, 2),
        'seeds': ([4, 5], lambda b: b.seeds, [4, 5]),
        'validation_ratio': (0.25, lambda b: b.validation_ratio, 0.25),
        'fraction': (0.9, lambda b: b.fraction, 0.9),
        'subsample_seed': (7, lambda b: b.subsample_seed, 7),
        'retrain': ('scratch', lambda b: b.retrain, 'scratch'),
        'species': (['Cu', 'I'], lambda b: b.species, ['Cu', 'I']),
        'settings': ({'compile': True}, lambda b: b.settings, {'compile': True}),
        'options': ({'queue_name': 'gpu'}, lambda b: b.options['queue_name'], 'gpu'),
        'hyperparameters': ({'max_epochs': 3}, lambda b: b.hyperparameters['max_epochs'], 3),
    },
    ExplorationWorkChain: {
        'temperatures': ([450.0], lambda b: b.temperatures, [450.0]),
        'seeds': ([8], lambda b: b.seeds, [8]),
        'max_restarts': (5, lambda b: b.max_restarts, 5),
        'guards': ({'max_force': 9.0}, lambda b: b.guards['max_force'], 9.0),
        'settings': ({'workers': 2}, lambda b: b.settings, {'workers': 2}),
        'options': ({'queue_name': 'md'}, lambda b: b.options['queue_name'], 'md'),
        'parameters': ({'steps': 33}, lambda b: b.parameters['steps'], 33),
        'hal': ({'trigger': {'s_tol': 0.3}}, lambda b: (b.trigger['s_tol'], b.bias['tau_hist']), (0.3, 20)),
        'bias': ({'kind': 'hal', 'tau': 0.5}, lambda b: b.bias.get_dict(), {'kind': 'hal', 'tau': 0.5}),
        'trigger': ({'kind': 'max_relative'}, lambda b: b.trigger.get_dict(), {'kind': 'max_relative'}),
    },
    HarmonicWorkChain: {
        'supercell_matrix': ([1, 2, 3], lambda b: b.supercell_matrix, [1, 2, 3]),
        'supercell_min_length': (3.0, lambda b: b.supercell_matrix, [1, 1, 1]),
        'displacement_distance': (0.02, lambda b: b.displacement_distance, 0.02),
        'label': ({'batch_size': 4}, lambda b: b.label.batch_size, 4),
        'label_protocol': ('precise', lambda b: b.label.options['max_wallclock_seconds'], 86400),
        'phonopy': ({'dos_mesh': [4, 4, 4]}, lambda b: b.phonopy_parameters['dos_mesh'], [4, 4, 4]),
    },
    LifetimesWorkChain: {
        'max_restarts': (5, lambda b: b.max_restarts, 5),
        'analysis': ({'dho': False}, lambda b: b.analysis['dho'], False),
        'equilibration': ({'steps': 10}, lambda b: b.equilibration['steps'], 10),
        'production': ({'save_stride': 2}, lambda b: b.production['save_stride'], 2),
        'options': ({'queue_name': 'md'}, lambda b: b.options['queue_name'], 'md'),
    },
    PerturbativeWorkChain: {
        'displacements': ({'cutoff_pair_distance': 4.0}, lambda b: b.displacements['cutoff_pair_distance'], 4.0),
        'analysis': ({'mesh': [3, 3, 3]}, lambda b: b.analysis['mesh'], [3, 3, 3]),
        'label': ({'batch_size': 7}, lambda b: b.label.batch_size, 7),
        'label_protocol': ('precise', lambda b: b.label.options['max_wallclock_seconds'], 86400),
        'options': ({'queue_name': 'p3'}, lambda b: b.options['queue_name'], 'p3'),
    },
    ActiveLearningWorkChain: {
        'max_iterations': (4, lambda b: b.max_iterations, 4),
        'seed': (9, lambda b: b.seed, 9),
        'acquisition': ({'s': 1.5}, lambda b: b.acquisition['s'], 1.5),
        'convergence': ({'patience': 2}, lambda b: b.convergence['patience'], 2),
        'start': ({'policy': 'test_frame'}, lambda b: b.start['policy'], 'test_frame'),
        'test_md': ({'steps': 40}, lambda b: (b.test_md['steps'], b.initial.parameters['n_test']), (40, 0)),
        'initial': ({'parameters': {'random': {'n_train': 11}}}, lambda b: b.initial.parameters['n_train'], 11),
        'ensemble': ({'n_sub': 4}, lambda b: b.ensemble.n_sub, 4),
        'explore': ({'guards': {'min_distance': None}}, lambda b: b.explore.guards['min_distance'], None),
        'label': ({'batch_size': 6}, lambda b: b.label.batch_size, 6),
        'validation': ({'parameters': {'steps': 10}}, lambda b: b.validation.parameters['steps'], 10),
        'neb': (
            {'initial': bulk('Cu', 'fcc', a=3.6), 'final': bulk('Cu', 'fcc', a=3.6), 'parameters': {'steps': 8}},
            lambda b: b.neb.parameters['steps'],
            8,
        ),
    },
    NEBWorkChain: {
        'reference_neb': (True, lambda b: b.reference_neb, True),
        'parameters': ({'steps': 7}, lambda b: b.parameters['steps'], 7),
        'settings': ({'workers': 2}, lambda b: b.settings, {'workers': 2}),
        'options': ({'queue_name': 'neb'}, lambda b: b.options['queue_name'], 'neb'),
        'label': ({'batch_size': 3}, lambda b: b.label.batch_size, 3),
    },
    ValidationMDWorkChain: {
        'max_restarts': (2, lambda b: b.max_restarts, 2),
        'guards': ({'max_force': 7.0}, lambda b: b.guards['max_force'], 7.0),
        'analysis': ({'stride': 3}, lambda b: b.analysis['stride'], 3),
        'options': ({'queue_name': 'val'}, lambda b: b.options['queue_name'], 'val'),
        'parameters': ({'steps': 12}, lambda b: b.parameters['steps'], 12),
    },
    DynamicTrainingWorkChain: {
        'initial': ({'parameters': {'n_test': 4}}, lambda b: b.initial.parameters['n_test'], 4),
        'fit': ({'cutoffs': [4.0, 3.0]}, lambda b: b.fit['cutoffs'], [4.0, 3.0]),
        'retrain': ({'rule': 'eps_min'}, lambda b: b.retrain, {'rule': 'eps_min'}),
        'convergence': ({'quiet_steps': 77}, lambda b: b.convergence['quiet_steps'], 77),
        'max_refits': (5, lambda b: b.max_refits, 5),
        'md': ({'parameters': {'steps': 123}}, lambda b: b.md.parameters['steps'], 123),
        'label': ({'batch_size': 6}, lambda b: b.label.batch_size, 6),
        'label_protocol': ('precise', lambda b: b.label.options['max_wallclock_seconds'], 86400),
        'options': ({'queue_name': 'dt'}, lambda b: b.options['queue_name'], 'dt'),
    },
}


def build(workchain, codes, overrides, options=None):
    cu = bulk('Cu', 'fcc', a=3.6, cubic=True)
    if workchain is LabelWorkChain:
        return workchain.get_builder_from_protocol(codes['label'], None, 'emt', 'fast', overrides, options=options)
    if workchain is EnsembleWorkChain:
        return workchain.get_builder_from_protocol(codes['train'], None, 'fast', overrides, options=options)
    if workchain is ExplorationWorkChain:
        return workchain.get_builder_from_protocol(
            codes['md'], None, cu, 'fast', overrides, options=options, exploration='hal'
        )
    if workchain is HarmonicWorkChain:
        return workchain.get_builder_from_protocol(codes['label'], cu, 'emt', 'fast', overrides, options=options)
    if workchain is NEBWorkChain:
        return workchain.get_builder_from_protocol(codes, None, cu, cu, 'emt', 'fast', overrides, options=options)
    if workchain is LifetimesWorkChain:
        return workchain.get_builder_from_protocol(
            codes, cu_force_constants(), None, 'emt', 'fast', overrides, options=options
        )
    if workchain is PerturbativeWorkChain:
        return workchain.get_builder_from_protocol(
            codes, cu_force_constants(), 'emt', 'fast', overrides, options=options
        )
    if workchain is ValidationMDWorkChain:
        return workchain.get_builder_from_protocol(codes, cu, None, None, 'emt', 'fast', overrides, options=options)
    if workchain is DynamicTrainingWorkChain:
        si, matrix = bulk('Si', 'diamond', a=5.432), [[-2, 2, 2], [2, -2, 2], [2, 2, -2]]
        return workchain.get_builder_from_protocol(codes, si, matrix, 'tersoff', 'fast', overrides, options=options)
    return workchain.get_builder_from_protocol(codes, cu, 'fast', overrides, engine='emt', options=options)


@pytest.fixture
def codes(train_code, evaluate_code, md_code, label_code, neb_code, lifetimes_code, perturbative_code):
    return {
        'train': train_code,
        'evaluate': evaluate_code,
        'md': md_code,
        'label': label_code,
        'neb': neb_code,
        'lifetimes': lifetimes_code,
        'perturbative': perturbative_code,
    }


def cu_force_constants():
    """EMT Cu's harmonic reference (the fcc primitive cell 2 x 2 x 2), built once per test session."""
    global _CU_FORCE_CONSTANTS
    if _CU_FORCE_CONSTANTS is None or not _CU_FORCE_CONSTANTS.is_stored:
        from ase.calculators.emt import EMT

        from aiida_anharmal.core.phonons.harmonic import force_constants_with
        from aiida_anharmal.data.force_constants import ForceConstants

        phonon = force_constants_with(EMT(), bulk('Cu', 'fcc', a=3.6), [2, 2, 2])
        _CU_FORCE_CONSTANTS = ForceConstants.from_phonopy(phonon).store()
    return _CU_FORCE_CONSTANTS


_CU_FORCE_CONSTANTS = None


@pytest.mark.parametrize('workchain', list(CASES), ids=lambda w: w.__name__)
def test_every_override_key_reaches_its_port(workchain, codes):
    cases = CASES[workchain]
    assert set(cases) == workchain.protocol_keys(), 'a protocol key without a case here (or a case for no key)'
    for key, (override, where, expected) in cases.items():
        assert value(where(build(workchain, codes, {key: override}))) == expected, key


@pytest.mark.parametrize('workchain', list(CASES), ids=lambda w: w.__name__)
def test_unknown_override_keys_are_refused_with_the_valid_ones(workchain, codes):
    valid = sorted(workchain.protocol_keys())
    with pytest.raises(ValueError, match=rf"unknown override key\(s\) \['typo'\] for {workchain.__name__}; valid: "):
        build(workchain, codes, {'typo': 1})
    try:
        build(workchain, codes, {'typo': 1})
    except ValueError as exc:
        assert str(exc).endswith(f'valid: {valid}')


def test_sub_builders_refuse_their_unknown_keys_too(codes):
    for namespace, sub in (
        ('ensemble', 'EnsembleWorkChain'),
        ('explore', 'ExplorationWorkChain'),
        ('label', 'LabelWorkChain'),
    ):
        with pytest.raises(ValueError, match=rf"unknown override key\(s\) \['typo'\] for {sub}"):
            build(ActiveLearningWorkChain, codes, {namespace: {'typo': 1}})
    with pytest.raises(ValueError, match=r"unknown override key\(s\) \['typo'\] for LabelWorkChain"):
        build(HarmonicWorkChain, codes, {'label': {'typo': 1}})


@pytest.mark.parametrize('workchain', list(CASES), ids=lambda w: w.__name__)
def test_options_merge_recursively_everywhere(workchain, codes):
    builder = build(workchain, codes, None, options=OPTIONS)
    namespaces = {ActiveLearningWorkChain: ('ensemble', 'explore', 'label'), HarmonicWorkChain: ('label',)}
    for options in [builder[n].options for n in namespaces.get(workchain, ())] or [builder.options]:
        assert options['resources'] == RESOURCES and options['max_wallclock_seconds'] == 77


def test_stage_options_come_from_the_overrides_and_common_options_win(codes):
    """docs/source/production.rst: per-stage resources in `overrides`, keys common to every job in `options`."""
    overrides = {
        'ensemble': {'options': {'queue_name': 'gpu', 'max_wallclock_seconds': 7200}},
        'label': {'options': {'resources': {'num_mpiprocs_per_machine': 32}, 'max_wallclock_seconds': 21600}},
    }
    builder = build(ActiveLearningWorkChain, codes, overrides, options={'account': 'project1'})
    ensemble, label, explore = (builder[n].options for n in ('ensemble', 'label', 'explore'))
    assert ensemble['queue_name'] == 'gpu' and ensemble['max_wallclock_seconds'] == 7200
    assert label['resources'] == {'num_machines': 1, 'num_mpiprocs_per_machine': 32}
    assert label['max_wallclock_seconds'] == 21600 and 'queue_name' not in label
    assert ensemble['account'] == label['account'] == explore['account'] == 'project1'
    # a key given in `options` too wins over the stage's
    common = build(ActiveLearningWorkChain, codes, overrides, options={'max_wallclock_seconds': 60})
    assert common.ensemble.options['max_wallclock_seconds'] == common.label.options['max_wallclock_seconds'] == 60


def test_the_ensemble_of_a_loop_keeps_the_protocol_retrain(codes, train_code):
    # built for a loop (no training set): the loop applies the protocol's `retrain` from its second iteration on
    assert value(build(ActiveLearningWorkChain, codes, None).ensemble.retrain) == 'scratch'
    finetuned = build(ActiveLearningWorkChain, codes, {'ensemble': {'retrain': 'finetune'}})
    assert value(finetuned.ensemble.retrain) == 'finetune'
    # built for one training set without a parent: nothing to fine-tune from, so `retrain` is left out
    frames = TrainingSet.from_ase(emt_cu_frames(6))
    alone = EnsembleWorkChain.get_builder_from_protocol(train_code, frames, 'fast')
    assert 'retrain' not in alone


def test_nested_keys_the_protocol_spells_out_are_checked(codes):
    cases = [
        (
            {'initial': {'mod': 'random'}},
            r"\['mod'\] in ActiveLearningWorkChain `initial`; valid: \['mode', 'parameters'\]",
        ),
        (
            {'initial': {'parameters': {'random': {'n_trian': 3}}}},
            r"\['n_trian'\] in ActiveLearningWorkChain `initial.parameters.random`",
        ),
    ]
    for overrides, match in cases:
        with pytest.raises(ValueError, match=rf'unknown override key\(s\) {match}'):
            build(ActiveLearningWorkChain, codes, overrides)
    # free-form contents are the processes' to check (when submitted): passed through here
    builder = build(ActiveLearningWorkChain, codes, {'ensemble': {'hyperparameters': {'num_layers': 3}}})
    assert builder.ensemble.hyperparameters['num_layers'] == 3
