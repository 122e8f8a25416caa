#!/usr/bin/env bash
# The one install path of vireid: used by the README, .ci/run and the Dockerfile.
#
#   scripts/install.sh            -> creates .venv and installs torch + the project (+ test tools)
#   VENV=/opt/venv scripts/install.sh
#   VIREID_SYSTEM=1 scripts/install.sh   -> install into the current interpreter (Docker image
#                                           that already ships torch)
#   VIREID_EXTRAS=dev,blazepose          -> optional extras (default: dev,blazepose)
#   scripts/install.sh --print-pip-args  -> print the arguments of each pip call (one call a
#                                           line, shell-quoted) instead of running it
#
# torch / torchvision: an interpreter that already has them keeps them (a GPU host or the
# PyTorch Docker image brings its own CUDA build): the project is installed with the host's
# versions as requirements (torch==<installed>), so pip keeps them or stops with a conflict,
# never swaps them. Only where this script installs torch itself do the pins of
# torch-pins.txt apply; constraints.txt (the project's other pins) holds no torch line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
print_only=0
[[ "${1:-}" == "--print-pip-args" ]] && print_only=1
extras="${VIREID_EXTRAS-dev,blazepose}"
if [[ "${VIREID_SYSTEM:-0}" == "1" ]]; then
    py="${PYTHON:-python3}"
else
    venv="${VENV:-$here/.venv}"
    if [[ ! -x "$venv/bin/python" && $print_only == 0 ]]; then
        "${PYTHON:-python3}" -m venv "$venv"
    fi
    py="$venv/bin/python"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1

pip_run() {  # one pip call, or its arguments with --print-pip-args
    if [[ $print_only == 1 ]]; then
        printf '%q ' "$@"
        echo
    else
        "$py" -m pip "$@"
    fi
}

installed() {  # the installed version of distribution $1 (nothing, status 1, if absent)
    [[ -x "$py" ]] || command -v "$py" >/dev/null || return 1
    "$py" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1" 2>/dev/null
}

keep=()     # the host's torch / torchvision, as requirements pinned to their installed versions
missing=()
for dist in torch torchvision; do
    if v="$(installed "$dist")"; then keep+=("$dist==$v"); else missing+=("$dist"); fi
done
if (( ${#keep[@]} == 0 )); then
    pip_run install -q -c torch-pins.txt -c constraints.txt torch torchvision
    host=(-c torch-pins.txt)
elif (( ${#missing[@]} > 0 )); then
    # one of the two is there: the other in a build that matches it
    pip_run install -q "${keep[@]}" "${missing[@]}"
    host=("${keep[@]}")
else
    host=("${keep[@]}")
fi
target="."
[[ -n "$extras" ]] && target=".[${extras}]"
pip_run install -q -c constraints.txt "${host[@]}" -e "$target"
if [[ ",$extras," == *",blazepose,"* ]]; then
    # mediapipe 0.10.21: the last release whose wheel carries the BlazePose model; without
    # its declared dependencies (a second OpenCV, jax, numpy>=2), see setup.cfg
    pip_run install -q -c constraints.txt --no-deps mediapipe==0.10.21
fi
[[ $print_only == 1 ]] && exit 0
echo "vireid installed into $("$py" -c 'import sys; print(sys.prefix)')"
