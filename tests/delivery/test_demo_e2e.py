"""scripts/demo.sh end to end at a reduced size (marker ``slow``): all six stages run, the
summary table, the trained-vs-untrained comparison and the pictures are there, the
training lowered its identity loss, and the trained network beats the same network
untrained on the SYSU-MM01 test identities.

Reduced: 160 synthetic SYSU-MM01 identities with one image per camera (40 test ids), a
one-epoch LIP estimator, 12 x 8 training steps of configs/demo.yaml, 3 gallery trials.
About 4 minutes on 2 idle cores. The margin asked (All-search mAP at least 1.5x the
untrained network's, both features) is well inside what this reduced run measured
(docs/getting-started.md); the full demo is what the 5x target is measured on.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REDUCED = {
    "VIREID_SKIP_INSTALL": "1",
    "DEMO_SYSU_IDS": "160",
    "DEMO_IMAGES_PER_CAMERA": "1",
    # the estimator's training path (DEMO_TRAIN_ESTIMATOR=1), at a size of seconds; the shipped
    # estimator the default path uses is tested in tests/pipeline/test_demo_estimator.py
    "DEMO_TRAIN_ESTIMATOR": "1",
    "DEMO_LIP_IDS": "16",
    "DEMO_ESTIMATOR_EPOCHS": "1",
    "DEMO_TRIALS": "3",
    # an estimator trained for seconds on 16 people finds few joints: train on the exact keypoints
    "DEMO_TRAIN_TARGETS": "keypoints",
    "DEMO_TRAIN_SET": "epochs=12 data.batches_per_epoch=8 val_every=6 optim.step_size=10",
}


@pytest.mark.slow
def test_demo_learns_and_reports(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, **REDUCED, "VENV": sys.prefix}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    res = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh"), str(out)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    for k in range(1, 7):
        assert f"== {k}/6 " in res.stdout, k
    durations = re.findall(r"^ +(\d+) s  (\d)/6 ", res.stdout, flags=re.M)      # each stage's time
    assert [k for _, k in durations] == [str(k) for k in range(1, 7)], res.stdout[-3000:]
    summary = res.stdout.split("== demo finished", 1)[1]
    assert "| f_ID |" in summary and "| f_ALL |" in summary and "All-search R20" in summary
    assert "| All-search | f_ALL |" in summary and "lowest mAP ratio" in summary and "pictures:" in summary
    # the pose task at work (issue 15): the cache's share of confident joints per modality,
    # the loss terms' gradient shares, the pose branch's PCKh per modality in validation and test
    assert re.search(r"joints with confidence > 0: RGB [\d.]+%, IR [\d.]+%", res.stdout)
    assert re.search(r"sysu-lip vs .*sysu-keypoints \(\d+ images in both\): PCKh@0.5 RGB [\d.]+% .*, IR [\d.]+%",
                     res.stdout)
    assert re.search(r"gradient-norm share on the modality-shared module: id \d+%, hctri \d+%, pose \d+%",
                     res.stdout + res.stderr)
    assert re.search(r"pose branch PCKh@0.5 RGB [\d.]+%, pose branch PCKh@0.5 IR [\d.]+%", res.stdout + res.stderr)
    assert re.search(r"PCKh@0.5 against the cached targets on the test images: RGB [\d.]+%, IR [\d.]+%", summary)
    for picture in ("run/losses.png", "run/val.png", "eval/cmc.png", "eval/ranking.png", "eval/pose.png",
                    "eval-untrained/ranking.png"):
        assert (out / picture).stat().st_size > 0, picture
    assert any((out / "pictures" / "heatmaps").glob("*.png"))

    trained = json.loads((out / "eval" / "results.json").read_text())
    untrained = json.loads((out / "eval-untrained" / "results.json").read_text())
    assert untrained["checkpoint"]["weights"] == "untrained" and trained["checkpoint"]["weights"] == "trained"
    assert trained["checkpoint"]["epoch"] >= 6                       # best.pt of a run that trained
    r = trained["compare"]["mAP_ratio"]["All-search"]["f_ALL"]
    assert r["baseline_mAP"] == untrained["results"]["All-search"]["features"]["f_ALL"]["mean"]["mAP"]
    assert r["mAP"] == trained["results"]["All-search"]["features"]["f_ALL"]["mean"]["mAP"]
    assert r["ratio"] == pytest.approx(r["mAP"] / r["baseline_mAP"])
    ratios = {f: trained["compare"]["mAP_ratio"]["All-search"][f]["ratio"] for f in ("f_ID", "f_ALL")}
    assert min(ratios.values()) >= 1.5, ratios                        # it learnt, beyond the noise

    # it trained: the identity loss of the last epoch is clearly below the first's
    epochs = [json.loads(line) for line in (out / "run" / "log.jsonl").read_text().splitlines()]
    epochs = [e for e in epochs if e["kind"] == "epoch"]
    assert len(epochs) == 12
    assert epochs[-1]["id"] < 0.95 * epochs[0]["id"], [round(e["id"], 2) for e in epochs]
