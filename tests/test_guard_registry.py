"""A guard registered in one place reaches the MD calculation's validation, its exit codes and its parser."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk

from aiida_anharmal.calculations.md import MDCalculation
from aiida_anharmal.core.md.stop_rules import GUARDS, Guard, build_stop_rules
from aiida_anharmal.workflows.md import stopped_by_rule

from .parsers.test_parsers import FIXTURES, parse_case, placeholder_ensemble


class DriftGuard(Guard):
    """Stop when the centre of mass has drifted more than the threshold from the origin of the cell."""

    key = 'max_drift'
    label = 'centre of mass drifted'
    reason = 'centre_of_mass_drifted'
    exit_status = 326
    exit_label = 'ERROR_CENTRE_OF_MASS_DRIFTED'
    message = 'Stopped by the drift guard: {message}.'
    default = None  # off unless asked for
    unit = 'A'

    def check(self, atoms, prediction):
        drift = float(np.linalg.norm(atoms.get_center_of_mass()))
        return f'the centre of mass is {drift:.2f} A away' if drift > self.threshold else None


def reset_specs():
    """Process specs are built once per class; a test that registers a rule late builds them again (its exit codes
    come from the stop rules)."""
    if '_spec' in MDCalculation.__dict__:
        del MDCalculation._spec


@pytest.fixture
def drift_guard():
    GUARDS.register(DriftGuard)
    reset_specs()
    yield DriftGuard
    GUARDS.unregister(DriftGuard.key)
    reset_specs()


def md_inputs(md_code, guards):
    return {
        'code': md_code,
        'ensemble': placeholder_ensemble(),
        'structure': orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6, cubic=True)),
        'guards': orm.Dict(guards),
        'metadata': {'options': {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}},
    }


def test_a_registered_guard_is_validated_declared_parsed_and_handled(drift_guard, md_code, aiida_localhost, tmp_path):
    spec = MDCalculation.spec()
    refused = spec.inputs.validate(md_inputs(md_code, {'max_drift': -1.0}))
    assert refused is not None and 'guard `max_drift` must be positive or null (off), not -1.0' in str(refused)
    assert spec.inputs.validate(md_inputs(md_code, {'max_drift': 2.0})) is None
    assert MDCalculation.exit_codes.ERROR_CENTRE_OF_MASS_DRIFTED.status == 326
    assert MDCalculation.state_exit_codes()['centre_of_mass_drifted'] == 'ERROR_CENTRE_OF_MASS_DRIFTED'
    # off by default, on with a threshold
    assert not any(isinstance(r, DriftGuard) for r in build_stop_rules({}, 300.0))
    assert any(isinstance(r, DriftGuard) for r in build_stop_rules({'max_drift': 2.0}, 300.0))
    # a run the guard stopped: its state maps to its exit code and the frames are kept
    folder = tmp_path / 'drifted'
    shutil.copytree(FIXTURES / 'md' / 'finished', folder)
    status = {'state': 'centre_of_mass_drifted', 'message': 'the centre of mass is 2.31 A away', 'seconds': 1.0}
    (folder / 'retrieved' / 'status.json').write_text(json.dumps(status))
    outputs, calcfunction = parse_case('md', folder, aiida_localhost, tmp_path / 'parse')
    assert calcfunction.exit_status == 326
    assert calcfunction.exit_message == 'Stopped by the drift guard: the centre of mass is 2.31 A away.'
    assert sorted(outputs) == ['frames', 'trajectory']
    # the restart workchain keeps such a run as a result instead of retrying it
    assert stopped_by_rule(SimpleNamespace(exit_status=326))
    assert not stopped_by_rule(SimpleNamespace(exit_status=330))


def test_without_the_registration_the_key_is_refused(md_code):
    refused = MDCalculation.spec().inputs.validate(md_inputs(md_code, {'max_drift': 2.0}))
    assert "unknown `guards` key(s) ['max_drift']" in str(refused)
    assert 'ERROR_CENTRE_OF_MASS_DRIFTED' not in MDCalculation.exit_codes


def test_a_guard_that_needs_the_harmonic_reference_is_refused_without_it(md_code):
    refused = MDCalculation.spec().inputs.validate(md_inputs(md_code, {'max_anharmonicity': 1.5}))
    assert "guard(s) ['max_anharmonicity'] need the `harmonic` input" in str(refused)
