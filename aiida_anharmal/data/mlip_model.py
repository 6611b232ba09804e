"""``MLIPModel``: a machine-learned potential file plus the metadata that says what it is."""

from __future__ import annotations

from pathlib import Path

from aiida import orm

from .common import SpeciesAndCutoff

#: Known model formats and what loads them.
FORMATS = {
    'nequip-0.5-torchscript': 'deployed NequIP 0.5.x model (TorchScript); loads with torch.jit.load',
    'nequip-package': 'nequip >= 0.7 packaged model (.nequip.zip) from nequip-package',
    'nequip-aotinductor': 'nequip >= 0.7 AOT-inductor compiled model (.nequip.pt2) from nequip-compile',
}

#: The first bytes of a zip archive: what a model file of every format starts with.
ZIP_MAGIC = b'PK\x03\x04'

#: Roles of a model in the workflow.
ROLES = ('member', 'reference')


class MLIPModel(SpeciesAndCutoff, orm.SinglefileData):
    """A model file with its metadata as attributes.

    Attributes: ``architecture`` (e.g. ``NequIP``), ``model_format`` (a key of :data:`FORMATS`),
    ``species`` (in the model's type order), ``r_max`` (Angstrom), ``seed``, ``hyperparameters``
    (dict), ``training_set_uuid``, ``train_indices`` / ``validation_indices`` (frames of the
    training set it was trained on), ``metrics`` (final errors) and ``role``: ``member`` for an
    ensemble member, ``reference`` for a model used as stand-in ground truth in place of DFT.
    """

    def __init__(
        self,
        file,
        *,
        architecture: str,
        model_format: str,
        species,
        r_max: float,
        seed: int | None = None,
        hyperparameters: dict | None = None,
        training_set_uuid: str | None = None,
        train_indices=None,
        validation_indices=None,
        metrics: dict | None = None,
        role: str = 'member',
        source: str | None = None,
        filename: str | None = None,
        **kwargs,
    ):
        super().__init__(file, filename=filename, **kwargs)
        if model_format not in FORMATS:
            raise ValueError(f'unknown model format {model_format!r}; known: {", ".join(FORMATS)}')
        if role not in ROLES:
            raise ValueError(f'role must be one of {ROLES}, not {role!r}')
        if float(r_max) <= 0:
            raise ValueError(f'r_max must be positive, not {r_max}')
        if not species:
            raise ValueError('a model needs at least one species')
        with self.open(mode='rb') as handle:
            head = handle.read(4)
        if head != ZIP_MAGIC:  # TorchScript files, nequip packages and AOT-inductor models are all zip archives
            raise ValueError(
                f'{self.filename} is not a {model_format} model: every model format is a zip archive, and this '
                f'file starts with {head!r}'
            )
        attrs = self.base.attributes
        attrs.set('architecture', architecture)
        attrs.set('model_format', model_format)
        attrs.set('species', list(species))
        attrs.set('r_max', float(r_max))
        attrs.set('role', role)
        optional = {
            'seed': seed,
            'hyperparameters': hyperparameters,
            'training_set_uuid': training_set_uuid,
            'train_indices': None if train_indices is None else [int(i) for i in train_indices],
            'validation_indices': None if validation_indices is None else [int(i) for i in validation_indices],
            'metrics': metrics,
            'source': source,
        }
        for key, value in optional.items():
            if value is not None:
                attrs.set(key, value)

    @classmethod
    def from_legacy_nequip(cls, path: str | Path, role: str = 'reference', source: str | None = None, **kwargs):
        """Wrap a deployed NequIP 0.5 TorchScript model, reading species and r_max from its metadata."""
        from ..core.models.nequip_legacy import read_metadata

        path = Path(path)
        info = read_metadata(path)
        return cls(
            str(path.resolve()),
            architecture='NequIP',
            model_format='nequip-0.5-torchscript',
            species=list(info.type_names),
            r_max=info.r_max,
            hyperparameters={'nequip_version': info.nequip_version, 'dtype': info.dtype},
            role=role,
            source=source,
            filename=path.name,
            **kwargs,
        )

    @property
    def model_format(self) -> str:
        return self.base.attributes.get('model_format')

    @property
    def role(self) -> str:
        return self.base.attributes.get('role')

    def get_description(self) -> str:
        return f'{self.base.attributes.get("architecture")} {self.model_format} ({", ".join(self.species)})'
