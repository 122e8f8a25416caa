"""`vireid-prep heatmaps` chooses no estimator silently (issue 26): without --weights and
without --estimator it stops with one line saying what to pass; the cache records which
estimator made it; --device auto is resolved (CUDA where there is one)."""
from __future__ import annotations

import hashlib
import json

import torch
from click.testing import CliRunner

from pipeline.cli import _heatmaps_device, cli
from tests.data.trees import make_sysu
from vireid.cache.format import describe_estimator
from vireid.pose.gccpm import GCCPM


def _one_line(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def test_no_estimator_and_no_weights_is_refused_in_one_line(tmp_path):
    make_sysu(tmp_path / "SYSU")
    res = CliRunner().invoke(cli, ["heatmaps", "--dataset", "sysu", "--root", str(tmp_path / "SYSU"),
                                   "--out", str(tmp_path / "c"), "--no-progress"])
    assert res.exit_code == 1
    line = _one_line(res.output)
    assert "no pose estimator given" in line and "--weights PATH" in line, line
    assert "--estimator blazepose" in line and "--estimator keypoints" in line, line
    assert not (tmp_path / "c").exists()                         # refused before anything is written


def test_help_names_lip_as_the_default():
    res = CliRunner().invoke(cli, ["heatmaps", "--help"])
    assert res.exit_code == 0
    flat = " ".join(res.output.split())
    assert "none is chosen silently" in flat and "[default: lip]" in flat, flat


def test_a_lip_cache_records_the_weights_sha256(tmp_path):
    make_sysu(tmp_path / "SYSU", per_cam=1)
    torch.manual_seed(0)
    weights = tmp_path / "gccpm.pth"
    torch.save({"state_dict": GCCPM(num_refinement_stages=0).state_dict(), "input_size": 32}, weights)
    res = CliRunner().invoke(cli, ["heatmaps", "--dataset", "sysu", "--root", str(tmp_path / "SYSU"), "--out",
                                   str(tmp_path / "c"), "--weights", str(weights), "--input-size", "32x16",
                                   "--allow-partial", "--no-progress"])
    assert res.exit_code == 0, res.output
    attrs = json.loads((tmp_path / "c" / "cache.json").read_text())
    record = attrs["estimator"]
    assert record["estimator"] == "lip"
    assert record["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert describe_estimator(attrs).startswith(f"the lip estimator (GCCPM weights {weights}, sha256 "
                                                f"{record['weights_sha256'][:12]}")


def test_describe_estimator_names_each_kind():
    assert "mediapipe 0.10.21" in describe_estimator(
        {"estimator": {"estimator": "blazepose", "mediapipe_version": "0.10.21", "weights_sha256": "ab" * 32}})
    assert describe_estimator({"estimator": {"estimator": "keypoints", "weights": "k.json",
                                             "weights_sha256": "cd" * 32}}).startswith("exact keypoints")
    for old in ({}, {"estimator": {}}, {"estimator": "lip"}):
        assert describe_estimator(old).startswith("an unknown estimator"), old


def test_device_auto_is_cuda_where_there_is_one(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _heatmaps_device("auto", 0, 1) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _heatmaps_device("auto", 0, 1) == "cuda"
    assert _heatmaps_device("auto", 1, 2) == "cuda:1"            # one GPU per part
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert _heatmaps_device("auto", 1, 2) == "cuda:3"            # torchrun's rank on this node
