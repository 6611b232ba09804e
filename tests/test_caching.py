"""AiiDA caching of label jobs: the same structures, engine and parameters in another run are not labelled again,
and the labelled frames still say where *this* run's structures came from."""

import numpy as np
from aiida.engine import run_get_node
from aiida.manage.caching import enable_caching

from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows import LabelWorkChain

from .conftest import cu_structures


def test_a_resubmitted_labelling_is_taken_from_the_cache_with_this_runs_origins(label_code):
    structures = cu_structures(3, seed=11)
    runs = {
        name: TrainingSet.from_ase(structures, origins=[{'kind': name, 'frame': k} for k in range(3)]).store()
        for name in ('first_run', 'second_run')
    }
    assert runs['first_run'].base.caching.get_hash() == runs['second_run'].base.caching.get_hash()
    nodes = {}
    with enable_caching(identifier='aiida.calculations:anharmal.label'):
        for name, source in runs.items():
            builder = LabelWorkChain.get_builder_from_protocol(label_code, source, engine='emt', protocol='fast')
            nodes[name] = run_get_node(builder)[1]
    calcs = {
        name: [n for n in node.called_descendants if n.process_label == 'LabelCalculation']
        for name, node in nodes.items()
    }
    assert not any(c.base.caching.is_created_from_cache for c in calcs['first_run'])
    assert calcs['second_run'] and all(c.base.caching.is_created_from_cache for c in calcs['second_run'])
    first, second = (nodes[name].outputs.labelled for name in ('first_run', 'second_run'))
    np.testing.assert_array_equal(second.get_array('forces'), first.get_array('forces'))
    for origin, k in zip(second.origins, range(3), strict=True):
        assert (origin['kind'], origin['frame'], origin['source_index']) == ('second_run', k, k)
        assert origin['source_uuid'] == runs['second_run'].uuid
        assert origin['label_calc'] == calcs['second_run'][0].uuid
