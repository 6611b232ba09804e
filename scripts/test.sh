#!/usr/bin/env bash
# Install everything, then ruff (lint and format) and the full test suite (unit, parsers from fixtures,
# integration through the daemon, docs build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. "${ANHARMAL_VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
# style first: it takes seconds and says what to fix
ruff check .
ruff format --check .
python -m pytest -v --durations=15 tests "$@"
