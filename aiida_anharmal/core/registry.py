"""Registries of strategy classes: one per kind (MD guards, acquisition kinds, convergence rules, ...).

A strategy is a small class that carries everything the layers above need to know about it:

``key``
    the name users write in their inputs (``min_distance``, ``force_max``, ``mae_and_selection``);
``defaults``
    its parameters and their default values (one place: the class);
``validate(parameters)``
    the checked parameters (defaults filled in) or a :class:`ValueError` that says what is wrong;
``label``
    how plots and tables name it;

plus what its kind needs (an MD guard also carries the exit code of a run it stops). Engines,
calculations, parsers, workflows, protocols and the CLI read strategies from the registry of
their kind, so adding one is one class and its test (see the developer guide in the docs). No
AiiDA import here.

A registry is filled from an entry-point group of installed packages (``anharmal.md.stop_rules``,
``anharmal.acquisitions``, ...; the name of each entry point is the class's ``key``), the first time it is
read: the module of a registry imports none of its members, and a third-party package adds a strategy by
declaring an entry point in its own metadata, without editing this one. :meth:`Registry.register` adds a
class by hand (tests, notebooks).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any, ClassVar, Generic, TypeVar

T = TypeVar('T')


def check_number(name: str, value, *, integer: bool = False, minimum: int = 1) -> None:
    """Raise :class:`ValueError` unless ``value`` is a positive finite number (not a bool), or with
    ``integer`` an integer of at least ``minimum``."""
    if isinstance(value, bool):
        ok = False
    elif integer:
        ok = isinstance(value, int) and value >= minimum
    else:
        ok = isinstance(value, (int, float)) and 0 < value < math.inf
    if not ok:
        kind = f'an integer of at least {minimum}' if integer else 'a positive number'
        raise ValueError(f'`{name}` must be {kind}, not {value!r}')


class Strategy:
    """Base of the strategy classes: a key, parameter defaults and their validation."""

    key: ClassVar[str] = ''
    label: ClassVar[str] = ''
    defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        """``parameters`` with the defaults filled in; unknown keys are refused."""
        unknown = sorted(set(parameters) - set(cls.defaults))
        if unknown:
            raise ValueError(f'unknown parameter(s) {unknown} of `{cls.key}`; known: {sorted(cls.defaults)}')
        return {**cls.defaults, **parameters}


class Registry(Generic[T]):
    """Strategy classes of one kind, by key: those of the entry-point ``group`` (sorted by key; with ``base``,
    only its subclasses: two registries may share a group), then those registered by hand."""

    #: every registry made, for :meth:`reload_all`
    instances: ClassVar[list[Registry]] = []

    def __init__(self, kind: str, group: str | None = None, base: type | None = None):
        self.kind, self.group, self.base = kind, group, base
        self._classes: dict[str, type[T]] = {}
        self._loaded = group is None
        Registry.instances.append(self)

    def reload(self) -> None:
        """Forget every class: the next read loads the entry points again (a package was installed or put on the
        path since; classes registered by hand are dropped)."""
        self._classes.clear()
        self._loaded = self.group is None

    @classmethod
    def reload_all(cls) -> None:
        """:meth:`reload` every registry."""
        for registry in cls.instances:
            registry.reload()

    def _load(self) -> None:
        """Register the classes of the entry-point group once (before any read)."""
        if self._loaded:
            return
        self._loaded = True
        found = sorted(entry_points(group=self.group), key=lambda point: point.name)
        if not found:
            raise RuntimeError(
                f'no {self.kind} is declared in the entry-point group `{self.group}`: is aiida-anharmal installed '
                '(pip install -e .)? Its built-in strategies are registered through its package metadata'
            )
        for point in found:
            try:
                cls = point.load()
            except (ImportError, AttributeError) as exception:
                raise RuntimeError(
                    f'entry point `{point.name} = {point.value}` of `{self.group}`: {exception}'
                ) from None
            if self.base is not None and not (isinstance(cls, type) and issubclass(cls, self.base)):
                continue
            if getattr(cls, 'key', None) != point.name:
                raise RuntimeError(
                    f'entry point `{point.name}` of `{self.group}` loads {point.value} whose key is '
                    f'{getattr(cls, "key", None)!r}: the name must be the key'
                )
            self._add(cls)

    def register(self, cls: type[T]) -> type[T]:
        """Add ``cls`` (usable as a class decorator); its ``key`` must be new."""
        self._load()
        return self._add(cls)

    def _add(self, cls: type[T]) -> type[T]:
        key = getattr(cls, 'key', '')
        if not key:
            raise ValueError(f'{cls.__name__} has no `key`: a {self.kind} needs one')
        if key in self._classes and self._classes[key] is not cls:
            raise ValueError(f'a {self.kind} with key `{key}` is already registered: {self._classes[key].__name__}')
        self._classes[key] = cls
        return cls

    def unregister(self, key: str) -> None:
        """Remove the class of ``key`` (for tests that register a class of their own)."""
        self._classes.pop(key, None)

    def get(self, key: str) -> type[T]:
        self._load()
        try:
            return self._classes[key]
        except KeyError:
            raise ValueError(f'unknown {self.kind} `{key}`; known: {", ".join(self._classes)}') from None

    def __contains__(self, key) -> bool:
        self._load()
        return key in self._classes

    def __iter__(self) -> Iterator[type[T]]:
        self._load()
        return iter(list(self._classes.values()))

    def __len__(self) -> int:
        self._load()
        return len(self._classes)

    def check_settings(self, settings: dict | None, name: str) -> dict | None:
        """``{'kind': key, parameters}`` (the ``name`` input) checked by the class of ``kind``, its defaults filled
        in; ``None`` or ``{}``: none of this kind."""
        if not settings:
            return None
        settings = dict(settings)
        kind = settings.pop('kind', None)
        if kind is None:
            raise ValueError(f'the `{name}` settings need a `kind`: one of {self.keys()}')
        return {'kind': kind, **self.get(kind).validate(settings)}

    def keys(self) -> list[str]:
        self._load()
        return list(self._classes)

    def __repr__(self) -> str:
        self._load()
        return f'Registry({self.kind!r}: {", ".join(self._classes)})'
