"""The demo's shipped LIP estimator (pipeline/estimators/weights/): the file is the one its
sha256 names, it records its training size, and its joints agree with the synthetic people's
exact keypoints on a fresh synthetic SYSU-MM01 tree (the demo measured PCKh@0.5 72.8% RGB /
65.8% IR on its 288 identities; the bar here, 50%, is what a broken or untrained file --
PCKh near 0 -- cannot pass)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.synth import synthesize
from vireid.cache.reader import HeatmapCache
from pipeline.compare import cache_agreement
from vireid.pose import gccpm

WEIGHTS = Path(__file__).resolve().parents[2] / "pipeline" / "estimators" / "weights"
SHIPPED = WEIGHTS / "demo_lip_gccpm.pt"


def test_the_shipped_file_is_the_one_its_sha256_names():
    want = (WEIGHTS / "demo_lip_gccpm.pt.sha256").read_text().split()
    assert want[1] == SHIPPED.name
    assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() == want[0]
    log = json.loads((WEIGHTS / "demo_lip_gccpm.log.json").read_text())
    model, meta = gccpm.read_gccpm_checkpoint(SHIPPED)
    assert meta["input_size"] == log["config"]["input_size"] == 96
    assert log["config"]["num_refinement_stages"] == 0 and len(model.refinement_stages) == 0
    assert log["final_val"]["average"] > 60                    # what the recipe reached on its val split


def test_the_shipped_estimator_finds_the_synthetic_joints(tmp_path):
    root = tmp_path / "SYSU-MM01"
    synthesize("sysu", root, seed=5, ids=8, images_per_camera=1)
    common = ["--dataset", "sysu", "--root", str(root), "--input-size", "128x64", "--device", "cpu",
              "--no-progress"]
    runner = CliRunner()
    res = runner.invoke(cli, ["heatmaps", *common, "--out", str(tmp_path / "lip"), "--weights", str(SHIPPED)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["heatmaps", *common, "--out", str(tmp_path / "kp"), "--estimator", "keypoints"])
    assert res.exit_code == 0, res.output
    result, matched = cache_agreement(HeatmapCache(tmp_path / "lip"), HeatmapCache(tmp_path / "kp"), 0.5)
    assert matched == len(HeatmapCache(tmp_path / "kp")) > 0
    for modality in ("rgb", "ir"):
        assert result[modality].average > 50, (modality, result[modality].average)
