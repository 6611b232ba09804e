"""Protocols: named input sets (``fast``, ``moderate``, ``precise``) kept in YAML files here."""

from __future__ import annotations

import copy
from importlib import resources

import yaml


def recursive_merge(base: dict, overrides: dict) -> dict:
    """Return ``base`` updated by ``overrides``; nested dicts are merged, everything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = recursive_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


#: Keys whose dict contents the protocols do not spell out (see ``ProtocolMixin._open_keys``).
OPEN_KEYS = (
    'options',
    'settings',
    'parameters',
    'hyperparameters',
    'engines',
    'guards',
    'bias',
    'trigger',
    'acquisition',
    'convergence',
    'start',
    'phonopy',
    'test_md',
)


def _check_nested(where: str, overrides: dict, known: list[dict]) -> None:
    """Refuse keys of ``overrides`` that no dict of ``known`` (the same place in every protocol) has."""
    valid = {k for d in known for k in d}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(f'unknown override key(s) {unknown} in {where}; valid: {sorted(valid)}')
    for key, value in overrides.items():
        inner = [d[key] for d in known if isinstance(d.get(key), dict)]
        if isinstance(value, dict) and inner:
            _check_nested(f'{where[:-1]}.{key}`', value, inner)


class ProtocolMixin:
    """Adds protocol look-up to a workchain class; the class names its YAML file in ``_protocol_file``."""

    _protocol_file: str = ''
    #: Override keys that name sub-workchains, whose own builders check them.
    _namespaces: tuple[str, ...] = ()
    #: Dict-valued keys whose contents are free-form here and checked by the process's own validator
    #: when it is submitted (scheduler options, engine or MD parameters, strategy parameters, ...).
    _open_keys: tuple[str, ...] = OPEN_KEYS

    @classmethod
    def _load_protocol_file(cls) -> dict:
        text = resources.files(__package__).joinpath(cls._protocol_file).read_text(encoding='utf-8')
        return yaml.safe_load(text)

    @classmethod
    def get_default_protocol(cls) -> str:
        return cls._load_protocol_file()['default_protocol']

    @classmethod
    def get_available_protocols(cls) -> dict[str, dict]:
        """Protocol names with their descriptions."""
        data = cls._load_protocol_file()
        return {name: {'description': values['description']} for name, values in data['protocols'].items()}

    @classmethod
    def protocol_keys(cls) -> set[str]:
        """The keys an override may name: those of the default inputs and of every protocol."""
        data = cls._load_protocol_file()
        keys = set(data.get('default_inputs', {}))
        for values in data['protocols'].values():
            keys |= set(values)
        return (keys | set(cls._namespaces)) - {'description'}

    @classmethod
    def check_overrides(cls, overrides: dict | None) -> None:
        """Refuse override keys the protocols do not know, with the list of valid ones, at every level the
        protocol file spells out (the contents of open keys and namespaces are checked by their owners)."""
        unknown = sorted(set(overrides or {}) - cls.protocol_keys())
        if unknown:
            raise ValueError(
                f'unknown override key(s) {unknown} for {cls.__name__}; valid: {sorted(cls.protocol_keys())}'
            )
        data = cls._load_protocol_file()
        known = [data.get('default_inputs', {}), *data['protocols'].values()]
        for key, value in (overrides or {}).items():
            if key in cls._open_keys or key in cls._namespaces or not isinstance(value, dict):
                continue
            _check_nested(f'{cls.__name__} `{key}`', value, [k[key] for k in known if isinstance(k.get(key), dict)])

    @classmethod
    def get_protocol_inputs(cls, protocol: str | None = None, overrides: dict | None = None) -> dict:
        """The inputs of ``protocol`` (default protocol if ``None``) merged with ``overrides``."""
        cls.check_overrides(overrides)
        data = cls._load_protocol_file()
        protocol = protocol or data['default_protocol']
        try:
            inputs = data['protocols'][protocol]
        except KeyError:
            raise ValueError(f'unknown protocol {protocol!r}; available: {", ".join(data["protocols"])}') from None
        inputs = recursive_merge(data.get('default_inputs', {}), inputs)
        inputs.pop('description', None)
        return recursive_merge(inputs, overrides or {})


def namespace_inputs(builder, exclude=()) -> dict:
    """The inputs set in a sub-workchain's ``builder``, for the namespace that exposes them (minus ``exclude``)."""
    inputs = builder._inputs(prune=True)
    for name in ('metadata', *exclude):
        inputs.pop(name, None)
    return inputs
