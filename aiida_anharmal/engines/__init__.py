"""Programs run by the calculation jobs (console scripts), all on the contract of :mod:`.runner`.

Each module defines ``PROGRAM`` (a :class:`~.runner.Program`: setup, run, failure states) and
``main = PROGRAM.main``; it reads its inputs from files in the job folder and writes its outputs
and ``status.json`` there.
"""
