#!/usr/bin/env bash
# The README's first command: install, then run the pipeline on built-in synthetic data.
#   bash scripts/demo.sh [OUT_DIR]      (default: demo_out/)
# Stages so far: synthetic SYSU-MM01 / RegDB / LIP trees in the real layouts, and
# their manifests (checked against the layout, with content hashes).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
out="${1:-demo_out}"
bash scripts/install.sh
bin="${VENV:-$here/.venv}/bin"
[[ "${VIREID_SYSTEM:-0}" == "1" ]] && bin="$(dirname "$(command -v python3)")"
prep="$bin/vireid-prep"
mkdir -p "$out"
echo "== 1/2 synthetic data in the real layouts"
"$prep" synth --layout sysu --out "$out/SYSU-MM01" --ids 24 --seed 0
"$prep" synth --layout regdb --out "$out/RegDB" --ids 20 --seed 0
"$prep" synth --layout lip --out "$out/LIP" --ids 40 --seed 0
echo "== 2/2 manifests"
"$prep" manifest --dataset sysu --root "$out/SYSU-MM01" --out "$out/sysu.manifest.json"
"$prep" manifest --dataset regdb --root "$out/RegDB" --out "$out/regdb.manifest.json"
"$prep" manifest --dataset lip --root "$out/LIP" --out "$out/lip.manifest.json"
echo "demo finished: outputs in $out/"
