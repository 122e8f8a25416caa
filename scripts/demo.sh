#!/usr/bin/env bash
# The README's first command: install, then run the pipeline on built-in synthetic data.
#   bash scripts/demo.sh [OUT_DIR]      (default: demo_out/)
# Stages: synthetic SYSU-MM01 / RegDB trees in the real layouts, their manifests, the LIP
# pose estimator (GCCPM) pretrained on a synthetic LIP set (the one shipped in
# pipeline/estimators/weights/, checked against its sha256; DEMO_TRAIN_ESTIMATOR=1 trains it
# again with the recipe that made it), a heatmap cache of
# SYSU-MM01 made with that estimator (its share of confident joints printed, verified, with
# pictures) and one made from the synthetic people's exact keypoints (the reference the
# estimator's joints are scored against, PCKh per modality), the joint model trained on the
# estimator's cache (configs/demo.yaml), and the SYSU-MM01 evaluation of the same network
# untrained (random weights) and trained, with the mAP ratio of the two.
#
# Environment (defaults = the demo; the slow end-to-end test uses smaller values):
#   VIREID_SKIP_INSTALL=1   do not run scripts/install.sh (use an existing VENV as is)
#   VENV=/path              the virtual environment (default .venv); VIREID_SYSTEM=1: current python
#   DEMO_SYSU_IDS=288       synthetic SYSU-MM01 identities (25% test, 15% val)
#   DEMO_IMAGES_PER_CAMERA=2  SYSU-MM01 images per identity and camera
#   DEMO_TRAIN_ESTIMATOR=0  1: synthesise the LIP set and train the estimator (about 6 minutes on 2
#                           cores) instead of using the shipped one it reproduces
#   DEMO_LIP_IDS=1000  DEMO_ESTIMATOR_EPOCHS=5  with DEMO_TRAIN_ESTIMATOR=1: the LIP estimator's data
#                           (5 images a person, 80% train) and epochs (docs/findings.md: the demo's estimator)
#   DEMO_TRAIN_SET="k=v ..."  extra vireid-train overrides, e.g. "epochs=2"
#   DEMO_TRIALS=10          SYSU-MM01 gallery trials
#   DEMO_TRAIN_TARGETS=lip  train on the demo estimator's cache (default) or keypoints (the
#                           exact keypoints' cache; the reduced CI demo, whose estimator trains
#                           for seconds, uses it)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
out="${1:-demo_out}"
[[ "${VIREID_SKIP_INSTALL:-0}" == "1" ]] || bash scripts/install.sh
bin="${VENV:-$here/.venv}/bin"
[[ "${VIREID_SYSTEM:-0}" == "1" ]] && bin="$(dirname "$(command -v python3)")"
prep="$bin/vireid-prep"
sysu_ids="${DEMO_SYSU_IDS:-288}"
per_cam="${DEMO_IMAGES_PER_CAMERA:-2}"
lip_ids="${DEMO_LIP_IDS:-1000}"
est_epochs="${DEMO_ESTIMATOR_EPOCHS:-5}"
trials="${DEMO_TRIALS:-10}"
train_estimator="${DEMO_TRAIN_ESTIMATOR:-0}"
[[ "$train_estimator" == "0" || "$train_estimator" == "1" ]] || { echo "DEMO_TRAIN_ESTIMATOR must be 0 or 1" >&2; exit 2; }
shipped="$here/pipeline/estimators/weights/demo_lip_gccpm.pt"
targets="${DEMO_TRAIN_TARGETS:-lip}"
[[ "$targets" == "keypoints" || "$targets" == "lip" ]] || { echo "DEMO_TRAIN_TARGETS must be keypoints or lip" >&2; exit 2; }
read -r -a train_set <<< "${DEMO_TRAIN_SET:-}"
mkdir -p "$out"
start=$SECONDS
last=$SECONDS
times=()
# each stage's start (seconds since the demo began); the closing table gives each one's duration
stage() {
    [[ ${#times[@]} -gt 0 ]] && times[-1]="${times[-1]}|$((SECONDS - last))"
    last=$SECONDS
    times+=("$1")
    echo "== $1 ($((SECONDS - start)) s)"
}
stage "1/6 synthetic data in the real layouts"
"$prep" synth --layout sysu --out "$out/SYSU-MM01" --ids "$sysu_ids" --images-per-camera "$per_cam" --seed 0 --no-progress
"$prep" synth --layout regdb --out "$out/RegDB" --ids 20 --seed 0 --no-progress
[[ "$train_estimator" == "1" ]] && "$prep" synth --layout lip --out "$out/LIP" --ids "$lip_ids" --seed 0 --no-progress
stage "2/6 manifests"
"$prep" manifest --dataset sysu --root "$out/SYSU-MM01" --out "$out/sysu.manifest.json" --no-progress
"$prep" manifest --dataset regdb --root "$out/RegDB" --out "$out/regdb.manifest.json" --no-progress
[[ "$train_estimator" == "1" ]] && "$prep" manifest --dataset lip --root "$out/LIP" --out "$out/lip.manifest.json" --no-progress
stage "3/6 LIP pose estimator (GCCPM, initial stage only, 96x96) pretrained on a synthetic LIP set"
if [[ "$train_estimator" == "1" ]]; then
    # a short run's recipe (docs/findings.md, "The demo's LIP estimator"): no refinement stage (0.6x the step time),
    # lr 1e-2 with a warm-up and a cosine decay, light augmentation, GCCPM's sigma of 7 px at stride 8
    "$prep" train-estimator --dataset lip --root "$out/LIP" --out "$out/lip_gccpm.pt" \
        --input-size 96 --num-refinement-stages 0 --epochs "$est_epochs" --lr 1e-2 --schedule cosine \
        --augment light --batch-size 32 --workers 0 --val-images 300
else
    # the estimator that recipe trained (DEMO_TRAIN_ESTIMATOR=1 makes it again), checked by its sha256
    (cd "$(dirname "$shipped")" && sha256sum --quiet -c "$(basename "$shipped").sha256") \
        || { echo "$shipped: sha256 differs from $shipped.sha256 (damaged copy?)" >&2; exit 1; }
    cp "$shipped" "$out/lip_gccpm.pt"
    "$bin/python" - "$shipped" <<'PY'
import json, sys
from pathlib import Path
log = json.loads(Path(sys.argv[1]).with_suffix(".log.json").read_text())
sha = Path(sys.argv[1] + ".sha256").read_text().split()[0]
print(f"{sys.argv[1]}: shipped, sha256 {sha[:16]} OK; trained {log['config']['epochs']} epoch(s) on "
      f"{log['train_images']} synthetic LIP images, val PCKh@0.5 {log['initial_val']['average']:.2f} -> "
      f"{log['final_val']['average']:.2f} (DEMO_TRAIN_ESTIMATOR=1 trains it again)")
PY
fi
stage "4/6 heatmap caches of SYSU-MM01: with that estimator (at its training size, 96), and from the known keypoints"
# the estimator's cache, the one the joint model trains on, as with real data: its share of
# confident joints says how much it can supervise the pose branch
"$prep" heatmaps --dataset sysu --root "$out/SYSU-MM01" --out "$out/cache/sysu-lip" \
    --manifest "$out/sysu.manifest.json" --weights "$out/lip_gccpm.pt" --input-size 128x64 --shard-size 128
# the reference: the synthetic people's exact keypoints (vireid_keypoints.json), which real data
# does not have (DEMO_TRAIN_TARGETS=keypoints trains on it)
"$prep" heatmaps --dataset sysu --root "$out/SYSU-MM01" --out "$out/cache/sysu-keypoints" \
    --manifest "$out/sysu.manifest.json" --estimator keypoints --input-size 128x64 --shard-size 128
# how good the estimator's joints are, per modality, against the exact keypoints (PCKh@0.5)
"$prep" compare "$out/cache/sysu-lip" --reference "$out/cache/sysu-keypoints" | tee "$out/compare.log"
cache="$out/cache/sysu-${targets}"
"$prep" verify "$cache"
"$prep" show "$cache" --out "$out/pictures/heatmaps"
stage "5/6 joint pose/ReID training (configs/demo.yaml: ResNet-18, 128x64, val ids held out)"
"$bin/vireid-train" --config configs/demo.yaml --cache "$cache" --out "$out/run" --resume auto \
    --no-progress ${train_set[@]+"${train_set[@]}"}
ck="$out/run/best.pt"
[[ -f "$ck" ]] || ck="$out/run/last.pt"
stage "6/6 SYSU-MM01 protocol (all and indoor search, single shot, $trials trials): untrained, then trained"
"$bin/vireid-eval" --checkpoint "$ck" --cache "$cache" --out "$out/eval-untrained" --trials "$trials" \
    --untrained --no-progress
"$bin/vireid-eval" --checkpoint "$ck" --cache "$cache" --out "$out/eval" --trials "$trials" \
    --compare "$out/eval-untrained/results.json" --no-progress > "$out/eval.log"
times[-1]="${times[-1]}|$((SECONDS - last))"
echo "== demo finished in $((SECONDS - start)) s; each stage:"
for t in "${times[@]}"; do printf '   %5s s  %s\n' "${t##*|}" "${t%|*}"; done
echo "the trained model ($ck) on the SYSU-MM01 test ids:"
cat "$out/eval/results.md"
grep "lowest mAP ratio" "$out/eval.log"
grep "Pose Estimation branch" "$out/eval.log" || true
echo "pictures: $out/pictures/heatmaps/ (cached crops, skeletons, heatmaps), $out/run/losses.png and val.png"
echo "          (training), $out/eval/cmc.png, ranking.png and pose.png (target vs predicted skeletons,"
echo "          RGB and IR; trained), $out/eval-untrained/ (untrained)"
echo "results:  $out/eval/results.json, $out/eval-untrained/results.json"
