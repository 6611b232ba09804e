"""Every builder finds the codes that ``anharmal setup`` made when none is given (aiida-quantumespresso's shape)."""

import pytest
from ase.build import bulk

from aiida_anharmal.workflows import (
    ActiveLearningWorkChain,
    EnsembleWorkChain,
    ExplorationWorkChain,
    HarmonicWorkChain,
    LabelWorkChain,
)
from aiida_anharmal.workflows.codes import resolve_codes
from aiida_anharmal.workflows.neb import NEBWorkChain
from aiida_anharmal.workflows.validation import ValidationMDWorkChain


@pytest.fixture
def setup_codes(label_code, train_code, evaluate_code, md_code, neb_code, lifetimes_code, perturbative_code):
    return {
        'label': label_code,
        'train': train_code,
        'evaluate': evaluate_code,
        'md': md_code,
        'neb': neb_code,
        'lifetimes': lifetimes_code,
        'perturbative': perturbative_code,
    }


def test_every_builder_finds_the_codes_of_the_setup(setup_codes):
    cu = bulk('Cu', 'fcc', a=3.6, cubic=True)
    assert resolve_codes(None, required=tuple(setup_codes)) == setup_codes
    assert LabelWorkChain.get_builder_from_protocol(None, None, 'emt', 'fast').code.pk == setup_codes['label'].pk
    assert EnsembleWorkChain.get_builder_from_protocol(None, None, 'fast').code.pk == setup_codes['train'].pk
    assert ExplorationWorkChain.get_builder_from_protocol(None, None, None, 'fast').code.pk == setup_codes['md'].pk
    harmonic = HarmonicWorkChain.get_builder_from_protocol(None, cu, 'emt', 'fast')
    assert harmonic.label.code.pk == setup_codes['label'].pk
    neb = NEBWorkChain.get_builder_from_protocol(None, None, cu, cu, 'emt', 'fast')
    assert neb.code.pk == setup_codes['neb'].pk
    validation = ValidationMDWorkChain.get_builder_from_protocol(None, cu, None, None, 'emt', 'fast')
    assert validation.md_code.pk == setup_codes['md'].pk and validation.evaluate_code.pk == setup_codes['evaluate'].pk
    loop = ActiveLearningWorkChain.get_builder_from_protocol(structure=cu, protocol='fast', engine='emt')
    assert loop.explore.code.pk == setup_codes['md'].pk and loop.evaluate_code.pk == setup_codes['evaluate'].pk


def test_a_code_given_wins_and_unknown_roles_are_refused(setup_codes):
    assert resolve_codes({'md': setup_codes['md']}, required=('md', 'label'))['label'].pk == setup_codes['label'].pk
    with pytest.raises(ValueError, match=r"unknown code role\(s\) \['md_code'\]"):
        resolve_codes({'md_code': setup_codes['md']}, required=('md',))
    with pytest.raises(ValueError, match='must be None, an AiiDA code or a dict'):
        resolve_codes('anharmal-md@localhost', required=('md',))
