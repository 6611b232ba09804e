"""nequip's train, package and compile stages in one Python interpreter (run by ``anharmal-train``).

``python -m aiida_anharmal.engines.nequip_stages STAGES.json`` reads the stages to run (each a
name and the arguments of its nequip console script) and runs them in order in this process,
so torch and nequip are imported once: on a CPU core that saves about 8 s per member, a seventh
of a tiny member's training (``nequip-train`` alone starts in ~7 s, ``nequip-package`` in ~6 s
for one second of work; measured in ``docs/source/ensembles.rst``). After each stage it writes
the stage times to ``STAGES.json``'s ``seconds``; a failing stage ends the process with exit
code ``FIRST_STAGE_CODE + its index`` and its traceback on stderr, so the caller can tell which
stage failed. The stages are nequip's own console-script functions, called with the same
arguments as on the command line.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

#: Exit code of a failure in stage k is FIRST_STAGE_CODE + k (0: train, 1: package, 2: compile).
FIRST_STAGE_CODE = 10

#: The console script -> its module in nequip 0.19 (each has ``main``).
ENTRY_POINTS = {
    'nequip-train': 'nequip.scripts.train',
    'nequip-package': 'nequip.scripts.package',
    'nequip-compile': 'nequip.scripts.compile',
}


def _call(name: str, args: list[str]) -> None:
    """Run one console script's ``main`` as if started with ``args``; an exit status other than 0 raises."""
    import importlib

    module = importlib.import_module(ENTRY_POINTS[name])
    if name == 'nequip-train':  # a hydra app: it reads sys.argv
        sys.argv = [name, *args]
        status = _exit_status(module.main)
    else:
        status = _exit_status(lambda: module.main(args=args))
    if status not in (None, 0):
        raise RuntimeError(f'{name} exited with {status}')


def _exit_status(function):
    try:
        function()
    except SystemExit as exc:  # hydra and argparse end with sys.exit
        return exc.code
    return 0


def main(argv=None) -> int:
    path = Path((argv or sys.argv[1:])[0])
    request = json.loads(path.read_text())
    seconds = {}
    for index, (name, args) in enumerate(request['stages']):
        start = time.monotonic()
        try:
            _call(name, args)
        except Exception:  # noqa: BLE001 - any failure of a stage is that stage's failure
            traceback.print_exc()
            return FIRST_STAGE_CODE + index
        finally:
            seconds[name] = round(time.monotonic() - start, 2)
            path.write_text(json.dumps({**request, 'seconds': seconds}))
            sys.stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main())
