#!/usr/bin/env bash
# Install everything, set up the embedded AiiDA profile and daemon, and run the main job:
# active learning of CuI at 300 K with the reference model of Kang et al. standing in for DFT.
# Options go to `anharmal demo al` (e.g. --protocol moderate, --engine gpaw, --iterations 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. "${ANHARMAL_VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
anharmal setup
anharmal demo al "$@"
