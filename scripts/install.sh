#!/usr/bin/env bash
# The one install path of vireid: used by the README, .ci/run and the Dockerfile.
#
#   scripts/install.sh            -> creates .venv and installs torch + the project (+ test tools)
#   VENV=/opt/venv scripts/install.sh
#   VIREID_SYSTEM=1 scripts/install.sh   -> install into the current interpreter (Docker image
#                                           that already ships torch)
#   VIREID_EXTRAS=dev,blazepose          -> optional extras (default: dev,blazepose)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
extras="${VIREID_EXTRAS-dev,blazepose}"
if [[ "${VIREID_SYSTEM:-0}" == "1" ]]; then
    py="${PYTHON:-python3}"
else
    venv="${VENV:-$here/.venv}"
    if [[ ! -x "$venv/bin/python" ]]; then
        "${PYTHON:-python3}" -m venv "$venv"
    fi
    py="$venv/bin/python"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first, pinned by constraints.txt unless the interpreter already has a torch
# (a GPU host or the PyTorch Docker image brings its own CUDA build).
if ! "$py" -c "import torch, torchvision" >/dev/null 2>&1; then
    "$py" -m pip install -q -c constraints.txt torch torchvision
fi
target="."
[[ -n "$extras" ]] && target=".[${extras}]"
"$py" -m pip install -q -c constraints.txt -e "$target"
if [[ ",$extras," == *",blazepose,"* ]]; then
    # mediapipe 0.10.21: the last release whose wheel carries the BlazePose model; without
    # its declared dependencies (a second OpenCV, jax, numpy>=2), see setup.cfg
    "$py" -m pip install -q -c constraints.txt --no-deps mediapipe==0.10.21
fi
echo "vireid installed into $("$py" -c 'import sys; print(sys.prefix)')"
