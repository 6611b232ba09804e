#!/usr/bin/env bash
# Install everything on a fresh machine: system libraries for GPAW, a virtual environment,
# torch==2.13.0 (CPU) first, then aiida-anharmal with GPAW, test and docs extras.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ANHARMAL_VENV:-.venv}

if command -v apt-get >/dev/null 2>&1 && ! dpkg -s libxc-dev libopenblas-dev >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q libxc-dev libopenblas-dev
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
pip install -q --upgrade pip
# torch first and exactly: any other spec downloads GBs of CUDA wheels.
pip install -q torch==2.13.0
# GPAW builds its C extension: g++ (it includes <algorithm>), and no MPI even if one is installed.
export CC=g++ GPAW_CONFIG="$PWD/scripts/gpaw_siteconfig.py"
pip install -q -e ".[gpaw,tests,docs]"
python -c "import torch, gpaw, nequip, aiida; print('installed: torch', torch.__version__, '| gpaw', gpaw.__version__, '| nequip', nequip.__version__, '| aiida-core', aiida.__version__)"
