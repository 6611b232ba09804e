#!/usr/bin/env bash
# Install everything, start the production stack (PostgreSQL, RabbitMQ, a one-node SLURM cluster), then
# ruff (lint and format) and the full test suite (unit, parsers from fixtures, integration through the daemon
# of a PostgreSQL + RabbitMQ profile, jobs on SLURM, docs build).
# ANHARMAL_TEST_SERVICES=embedded runs the same suite on SQLite + ZeroMQ without services (SLURM tests skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
SERVICES=${ANHARMAL_TEST_SERVICES:-production}
if [ "$SERVICES" = production ]; then bash scripts/services.sh start; fi
. "${ANHARMAL_VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
# style first: it takes seconds and says what to fix
ruff check .
ruff format --check .
python -m pytest -v --durations=25 --aiida-services="$SERVICES" tests "$@"
