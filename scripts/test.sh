#!/usr/bin/env bash
# Install everything, then run the full test suite (unit, integration through the daemon, docs build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. "${ANHARMAL_VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
python -m pytest -v --durations=15 tests "$@"
