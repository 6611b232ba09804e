"""``Ensemble``: the members of a NequIP ensemble, linked in the graph by the calcfunction that made it."""

from __future__ import annotations

from aiida import orm

from .common import SpeciesAndCutoff
from .mlip_model import MLIPModel


class Ensemble(SpeciesAndCutoff, orm.Data):
    """An ensemble of :class:`MLIPModel` members.

    Made by :func:`aiida_anharmal.functions.assemble_ensemble`, whose inputs are the members, so
    ``ensemble.creator.inputs`` and the graph link every member; the attributes repeat what a
    query needs without loading them: ``members`` (label -> uuid, label ``sub{k}_seed{s}``),
    ``species``, ``r_max``, ``n_members``, ``seeds``, ``training_set_uuid``.
    """

    def __init__(self, members: dict[str, MLIPModel] | None = None, **kwargs):
        super().__init__(**kwargs)
        members = members or {}
        if len(members) < 2:
            raise ValueError(f'an ensemble needs at least two members, not {len(members)}')
        models = list(members.values())
        species = models[0].species
        r_max = models[0].r_max
        for label, model in members.items():
            if model.species != species or model.r_max != r_max:
                raise ValueError(
                    f'member {label} has species {model.species} and r_max {model.r_max}; the first member has '
                    f'{species} and {r_max}: members must share both'
                )
        attrs = self.base.attributes
        attrs.set('members', {label: model.uuid for label, model in sorted(members.items())})
        attrs.set('species', species)
        attrs.set('r_max', r_max)
        attrs.set('n_members', len(members))
        attrs.set('seeds', sorted({model.base.attributes.get('seed', None) for model in models} - {None}))
        uuids = {model.base.attributes.get('training_set_uuid', None) for model in models}
        if len(uuids) == 1 and None not in uuids:
            attrs.set('training_set_uuid', uuids.pop())

    @property
    def n_members(self) -> int:
        return int(self.base.attributes.get('n_members'))

    @property
    def members(self) -> dict[str, MLIPModel]:
        """Label -> member model node."""
        return {label: orm.load_node(uuid) for label, uuid in self.base.attributes.get('members').items()}

    def get_description(self) -> str:
        return f'{self.n_members} NequIP members ({", ".join(self.species)})'

    def calculator(self, workers: int | None = None, device: str = 'cpu'):
        """An :class:`aiida_anharmal.core.models.ensemble.EnsembleCalculator` over the members' model files."""
        import tempfile
        from pathlib import Path

        from ..core.models.ensemble import EnsembleCalculator, load_member

        models = []
        with tempfile.TemporaryDirectory() as tmp:
            for label, member in self.members.items():
                if member.model_format != 'nequip-package':
                    raise ValueError(f'member {label} is a {member.model_format} model; the calculator needs packages')
                path = Path(tmp) / f'{label}.nequip.zip'
                path.write_bytes(member.get_content(mode='rb'))
                models.append(load_member(path, device))
        return EnsembleCalculator(models, workers=workers, device=device)
