#!/usr/bin/env bash
# The README's first command: install, then run the pipeline on built-in synthetic data.
#   bash scripts/demo.sh [OUT_DIR]      (default: demo_out/)
# Stages: synthetic SYSU-MM01 / RegDB / LIP trees in the real layouts, their manifests,
# the LIP pose estimator (GCCPM) pretrained on the synthetic LIP set, the heatmap
# cache of SYSU-MM01 made with that estimator (verified, with pictures), the joint
# model trained on it, and the SYSU-MM01 evaluation (tables and pictures).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
out="${1:-demo_out}"
bash scripts/install.sh
bin="${VENV:-$here/.venv}/bin"
[[ "${VIREID_SYSTEM:-0}" == "1" ]] && bin="$(dirname "$(command -v python3)")"
prep="$bin/vireid-prep"
mkdir -p "$out"
echo "== 1/6 synthetic data in the real layouts"
"$prep" synth --layout sysu --out "$out/SYSU-MM01" --ids 24 --seed 0
"$prep" synth --layout regdb --out "$out/RegDB" --ids 20 --seed 0
"$prep" synth --layout lip --out "$out/LIP" --ids 40 --seed 0
echo "== 2/6 manifests"
"$prep" manifest --dataset sysu --root "$out/SYSU-MM01" --out "$out/sysu.manifest.json"
"$prep" manifest --dataset regdb --root "$out/RegDB" --out "$out/regdb.manifest.json"
"$prep" manifest --dataset lip --root "$out/LIP" --out "$out/lip.manifest.json"
echo "== 3/6 LIP pose estimator (GCCPM, 1 refinement stage, 128x128) on the synthetic LIP set"
"$prep" train-estimator --dataset lip --root "$out/LIP" --out "$out/lip_gccpm.pt" \
    --input-size 128 --num-refinement-stages 1 --epochs 12 --lr 1e-3 --batch-size 16 --workers 0
echo "== 4/6 heatmap cache of SYSU-MM01 with that estimator"
"$prep" heatmaps --dataset sysu --root "$out/SYSU-MM01" --out "$out/cache/sysu" \
    --manifest "$out/sysu.manifest.json" --weights "$out/lip_gccpm.pt" --input-size 128x64 --shard-size 128
"$prep" verify "$out/cache/sysu"
"$prep" show "$out/cache/sysu" --out "$out/pictures/heatmaps"
echo "== 5/6 joint pose/ReID training (configs/demo.yaml: ResNet-18, 128x64, val ids held out)"
"$bin/vireid-train" --config configs/demo.yaml --cache "$out/cache/sysu" --out "$out/run" --resume auto --no-progress
echo "== 6/6 SYSU-MM01 protocol (all and indoor search, single shot, 10 trials) on the best checkpoint"
"$bin/vireid-eval" --checkpoint "$out/run/best.pt" --cache "$out/cache/sysu" --out "$out/eval" --no-progress
echo "demo finished: outputs in $out/ (heatmap pictures in $out/pictures/heatmaps, training plots in $out/run, results and pictures in $out/eval)"
