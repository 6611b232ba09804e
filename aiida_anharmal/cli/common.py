"""What the commands share: a profile and a node loaded with one clear line instead of a traceback."""

from __future__ import annotations

import click


def load_profile(profile: str | None):
    """Load ``profile`` (``None``: the default one); a :class:`click.ClickException` naming it if there is none."""
    from aiida import load_profile as aiida_load_profile
    from aiida.common.exceptions import AiidaException

    try:
        return aiida_load_profile(profile, allow_switch=True)
    except (AiidaException, ValueError) as exc:
        raise click.ClickException(f'cannot load profile {profile or "(default)"}: {first_line(exc)}') from None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name if it has none): one line for the user."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_node(profile: str | None, identifier: str, kinds: tuple = (), what: str = ''):
    """The node of ``identifier`` (pk, UUID or label) in ``profile``. ``kinds``: the node classes or process
    labels it must be (``what`` names them in the error); a :class:`click.ClickException` otherwise."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    load_profile(profile)
    try:
        node = orm.load_node(identifier)
    except NotExistent:
        raise click.ClickException(f'no node with identifier {identifier!r}') from None
    except (MultipleObjectsError, ValueError) as exc:
        raise click.ClickException(f'identifier {identifier!r} is not one node: {exc}') from None
    if kinds and not any(_is(node, kind) for kind in kinds):
        actual = getattr(node, 'process_label', None) or type(node).__name__
        raise click.ClickException(f'{actual}<{node.pk}> is not {what}')
    return node


def _is(node, kind) -> bool:
    if isinstance(kind, str):
        return getattr(node, 'process_label', None) == kind
    return isinstance(node, kind)


def reference_model():
    """The bundled CuI reference model as an MLIPModel node (stored once, then reused)."""
    from aiida import orm

    from ..data.mlip_model import MLIPModel
    from ..resources import cui_reference_model_path

    source = 'almomd-cui-reference (ALmoMD tutorial, MIT licence): stand-in for DFT'
    found = orm.QueryBuilder().append(MLIPModel, filters={'attributes.source': source}).first(flat=True)
    if found is not None:
        return found
    return MLIPModel.from_legacy_nequip(cui_reference_model_path(), role='reference', source=source).store()
