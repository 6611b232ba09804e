"""Analysis of finished (or running) workflows, read from the provenance graph; the CLI only prints it.

:mod:`.al` reads an active-learning run (iterations table, why a frame was selected, exploration
data, plots); :mod:`.plots` draws figures from plain numpy data (no AiiDA).
"""
