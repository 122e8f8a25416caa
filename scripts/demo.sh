#!/usr/bin/env bash
# The README's first command: install, then run the pipeline on built-in synthetic data.
#   bash scripts/demo.sh [OUT_DIR]      (default: demo_out/)
# Stages: synthetic SYSU-MM01 / RegDB / LIP trees in the real layouts, their manifests,
# the LIP pose estimator (GCCPM) pretrained on the synthetic LIP set, and the heatmap
# cache of SYSU-MM01 made with that estimator (verified, with pictures).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
out="${1:-demo_out}"
bash scripts/install.sh
bin="${VENV:-$here/.venv}/bin"
[[ "${VIREID_SYSTEM:-0}" == "1" ]] && bin="$(dirname "$(command -v python3)")"
prep="$bin/vireid-prep"
mkdir -p "$out"
echo "== 1/4 synthetic data in the real layouts"
"$prep" synth --layout sysu --out "$out/SYSU-MM01" --ids 24 --seed 0
"$prep" synth --layout regdb --out "$out/RegDB" --ids 20 --seed 0
"$prep" synth --layout lip --out "$out/LIP" --ids 40 --seed 0
echo "== 2/4 manifests"
"$prep" manifest --dataset sysu --root "$out/SYSU-MM01" --out "$out/sysu.manifest.json"
"$prep" manifest --dataset regdb --root "$out/RegDB" --out "$out/regdb.manifest.json"
"$prep" manifest --dataset lip --root "$out/LIP" --out "$out/lip.manifest.json"
echo "== 3/4 LIP pose estimator (GCCPM, 1 refinement stage, 128x128) on the synthetic LIP set"
"$prep" train-estimator --dataset lip --root "$out/LIP" --out "$out/lip_gccpm.pt" \
    --input-size 128 --num-refinement-stages 1 --epochs 12 --lr 1e-3 --batch-size 16 --workers 0
echo "== 4/4 heatmap cache of SYSU-MM01 with that estimator"
"$prep" heatmaps --dataset sysu --root "$out/SYSU-MM01" --out "$out/cache/sysu" \
    --manifest "$out/sysu.manifest.json" --weights "$out/lip_gccpm.pt" --input-size 128x64 --shard-size 128
"$prep" verify "$out/cache/sysu"
"$prep" show "$out/cache/sysu" --out "$out/pictures/heatmaps"
echo "demo finished: outputs in $out/ (heatmap pictures in $out/pictures/heatmaps)"
