"""The codes of a builder: given, or found where ``anharmal setup`` put them.

``anharmal setup`` makes one code per program of this package on a computer, labelled by the program
(``anharmal-train@localhost``, ...). A builder's ``code`` argument is then optional:

* ``None``: every code from the computer ``localhost``;
* one code (of any program of this package): the others from the same computer, by the same labels;
* a dict ``{role: code}`` (roles ``label``, ``train``, ``evaluate``, ``md``, ``neb``, ``lifetimes``,
  ``perturbative``): these, and the missing ones from the computer of the first given code (or ``localhost``);
  a role given as ``None`` is not looked for.

A role that is needed and found nowhere is refused with what to do about it.
"""

from __future__ import annotations

from aiida import orm
from aiida.common.exceptions import MultipleObjectsError, NotExistent

#: role -> the program (and code label) that ``anharmal setup`` makes for it
PROGRAMS = {
    'label': 'anharmal-label',
    'train': 'anharmal-train',
    'evaluate': 'anharmal-evaluate',
    'md': 'anharmal-md',
    'neb': 'anharmal-neb',
    'lifetimes': 'anharmal-lifetimes',
    'perturbative': 'anharmal-perturbative',
}
DEFAULT_COMPUTER = 'localhost'


def role_of(code: orm.AbstractCode) -> str | None:
    """The role of a code of this package, from its calculation plugin (``anharmal.train`` -> ``train``)."""
    plugin = code.default_calc_job_plugin or ''
    role = plugin.removeprefix('anharmal.')
    return role if plugin.startswith('anharmal.') and role in PROGRAMS else None


def find_code(role: str, computer: str) -> orm.AbstractCode | None:
    """The code ``anharmal-<role>@<computer>`` that ``anharmal setup`` made, or ``None``."""
    try:
        return orm.load_code(f'{PROGRAMS[role]}@{computer}')
    except (NotExistent, MultipleObjectsError):
        return None


def resolve_codes(code=None, required=(), optional=()) -> dict:
    """``{role: code}`` for the ``required`` roles (refused if one is found nowhere) and the ``optional`` ones
    that exist, from ``code`` (``None``, one code or a dict by role; see the module docstring)."""
    if code is None:
        given = {}
    elif isinstance(code, orm.AbstractCode):
        role = role_of(code)
        if role is None:
            raise ValueError(
                f'code `{code.full_label}` runs `{code.default_calc_job_plugin}`, not a program of aiida-anharmal: '
                f'give a dict by role ({", ".join(PROGRAMS)})'
            )
        given = {role: code}
    elif isinstance(code, dict):
        unknown = sorted(set(code) - set(PROGRAMS))
        if unknown:
            raise ValueError(f'unknown code role(s) {unknown}; known: {", ".join(PROGRAMS)}')
        wrong = sorted(role for role, value in code.items() if not isinstance(value, (orm.AbstractCode, type(None))))
        if wrong:
            raise ValueError(f'the code(s) of {wrong} are not AiiDA codes')
        given = {role: value for role, value in code.items() if value is not None}
    else:
        raise ValueError(f'`code` must be None, an AiiDA code or a dict of codes by role, not {type(code).__name__}')
    computer = next((c.computer.label for c in given.values()), DEFAULT_COMPUTER)
    codes = dict(given)
    left_out = {role for role, value in code.items() if value is None} if isinstance(code, dict) else set()
    for role in (*required, *optional):
        if role not in codes and role not in left_out:  # a role given as None is not looked for
            found = find_code(role, computer)
            if found is not None:
                codes[role] = found
    missing = [role for role in required if role not in codes]
    if missing:
        labels = ', '.join(f'`{PROGRAMS[role]}@{computer}`' for role in missing)
        raise ValueError(
            f'codes missing for {missing}: no code {labels}. Run `anharmal setup` (it makes them), or give '
            f'`code={{{", ".join(repr(role) + ": ..." for role in missing)}}}`'
        )
    return codes


def code_or_setup(code, role: str) -> orm.AbstractCode:
    """``code`` itself, or where it is ``None`` the code of ``role`` that ``anharmal setup`` made on ``localhost``."""
    return code if code is not None else resolve_codes(None, required=(role,))[role]
