"""The lip estimator wraps GCCPM: loads the checkpoint format strictly, decodes per crop."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.estimators import build_estimator
from pipeline.estimators.base import EstimatorError
from pipeline.estimators.lip import LipEstimator
from pipeline.verify import inspect_cache
from vireid.pose.gccpm import GCCPM
from tests.data.trees import make_sysu


def test_estimate_shapes_and_describe(golden_dir, shared_dir):
    est = LipEstimator(golden_dir / "lip_gccpm_2stage.pth")
    crops = sorted((shared_dir / "images" / "pedestrians").glob("*.png"))[:3]
    images = [cv2.imread(str(p)) for p in crops]
    out = est.estimate(images, [p.name for p in crops])
    assert out.shape == (3, 16, 3) and out.dtype == np.float32
    found = out[..., 2] > 0
    assert np.all((out[..., 2] >= 0) & (out[..., 2] <= 1))
    assert np.isnan(out[~found][:, :2]).all() and np.isfinite(out[found][:, :2]).all()
    d = est.describe()
    assert d["estimator"] == "lip" and d["refinement_stages"] == 2 and len(d["weights_sha256"]) == 64


def test_peak_maps_back_to_crop_pixels(tmp_path, monkeypatch):
    """A network whose last stage peaks at a known cell yields that cell's crop position."""
    torch.manual_seed(0)
    model = GCCPM(num_refinement_stages=1)
    path = tmp_path / "w.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    est = LipEstimator(path)

    def fake_forward(batch):
        maps = torch.zeros(batch.shape[0], 17, 32, 32)
        maps[:, :16, 16, 15] = 0.8            # cell (16, 15): network pixel (123.5, 131.5)
        return [maps]

    monkeypatch.setattr(est, "model", fake_forward)
    out = est.estimate([np.zeros((288, 144, 3), np.uint8)], ["x.jpg"])
    # 288x144 -> 256x128 (scale 8/9), padded by 64: x = (123.5 - 64 + .5) * 9/8 - .5, y = (131.5 + .5) * 9/8 - .5
    np.testing.assert_allclose(out[0, :, 0], 67.0, atol=1e-3)
    np.testing.assert_allclose(out[0, :, 1], 148.0, atol=1e-3)
    np.testing.assert_allclose(out[0, :, 2], 0.8, atol=1e-6)


def test_the_network_sees_the_training_fit(tmp_path, monkeypatch):
    """The estimator's input is exactly vireid.pose.codec.prepare_input's (the fit LIP training
    uses without augmentation), also for a wide crop, which is no longer squashed: its peak
    maps back through the same fit."""
    from vireid.pose.codec import prepare_input

    model = GCCPM(num_refinement_stages=1)
    torch.save({"state_dict": model.state_dict(), "input_size": 64}, tmp_path / "w.pth")
    est = LipEstimator(tmp_path / "w.pth")
    seen = []

    def fake_forward(batch):
        seen.append(batch.numpy().copy())
        maps = torch.zeros(batch.shape[0], 17, 8, 8)
        maps[:, :16, 4, 3] = 0.8            # cell (row 4, col 3): input pixel (27.5, 35.5)
        return [maps]

    monkeypatch.setattr(est, "model", fake_forward)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((300, 140), (40, 80))]
    out = est.estimate(images, ["a.jpg", "b.jpg"])
    for i, img in enumerate(images):
        np.testing.assert_array_equal(seen[0][i], prepare_input(img, 64)[0])
    # 40x80 into 64: scale 0.8, centred: input (27.5, 35.5) -> image ((27.5 - 31.5) / 0.8 + 39.5, (35.5 - 31.5) / 0.8 + 19.5)
    np.testing.assert_allclose(out[1, :, :2], np.tile([34.5, 24.5], (16, 1)), atol=1e-9)


@pytest.mark.parametrize("recorded,given,expected", [(None, None, 256), (128, None, 128), (128, 192, 192)])
def test_input_size_is_the_checkpoints_unless_given(tmp_path, monkeypatch, recorded, given, expected):
    model = GCCPM(num_refinement_stages=1)
    obj = {"state_dict": model.state_dict()}
    if recorded is not None:
        obj["input_size"] = recorded
    torch.save(obj, tmp_path / "w.pth")
    est = build_estimator("lip", root=tmp_path, weights=tmp_path / "w.pth", size=given)
    seen = []

    def fake_forward(batch):
        seen.append(tuple(batch.shape[2:]))
        return [torch.zeros(batch.shape[0], 17, batch.shape[2] // 8, batch.shape[3] // 8)]

    assert est.describe()["input"] == f"longer side {expected}, centred on {expected}x{expected}"
    monkeypatch.setattr(est, "model", fake_forward)
    est.estimate([np.zeros((288, 144, 3), np.uint8)], ["x.jpg"])
    assert seen == [(expected, expected)]


def test_bad_input_sizes_are_refused(tmp_path):
    model = GCCPM(num_refinement_stages=1)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "w.pth")
    with pytest.raises(EstimatorError, match="multiple of 8"):
        LipEstimator(tmp_path / "w.pth", size=100)
    torch.save({"state_dict": model.state_dict(), "input_size": "big"}, tmp_path / "odd.pth")
    with pytest.raises(EstimatorError, match=r"odd\.pth: input_size 'big' is not an integer"):
        LipEstimator(tmp_path / "odd.pth")
    with pytest.raises(EstimatorError, match="option of the lip estimator"):
        build_estimator("keypoints", root=tmp_path, size=128)


def test_missing_or_wrong_weights(tmp_path):
    with pytest.raises(EstimatorError, match="needs --weights"):
        build_estimator("lip", root=tmp_path)
    with pytest.raises(EstimatorError, match="not found"):
        LipEstimator(tmp_path / "absent.pth")
    torch.save({"state_dict": {"foo": torch.zeros(1)}}, tmp_path / "bad.pth")
    with pytest.raises(EstimatorError, match="unexpected keys"):
        LipEstimator(tmp_path / "bad.pth")


def test_heatmaps_command_with_lip_estimator(golden_dir, tmp_path):
    root = tmp_path / "SYSU"
    make_sysu(root)
    out = tmp_path / "cache"
    res = CliRunner().invoke(cli, ["heatmaps", "--dataset", "sysu", "--root", str(root), "--out", str(out),
                                   "--weights", str(golden_dir / "lip_gccpm_2stage.pth"), "--input-size", "32x16",
                                   "--sigma", "2", "--no-progress", "--allow-partial"])
    assert res.exit_code == 0, res.output
    assert inspect_cache(out).problems == []
    import json
    attrs = json.loads((out / "cache.json").read_text())
    assert "longer side 256, centred on 256x256" in json.dumps(attrs)     # the public weights record no size


def test_heatmaps_command_estimator_size(golden_dir, tmp_path):
    root = tmp_path / "SYSU"
    make_sysu(root)
    args = ["heatmaps", "--dataset", "sysu", "--root", str(root), "--weights", str(golden_dir / "lip_gccpm_2stage.pth"),
            "--input-size", "32x16", "--sigma", "2", "--no-progress", "--allow-partial"]
    res = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "c"), "--estimator-size", "128"])
    assert res.exit_code == 0, res.output
    assert "longer side 128, centred on 128x128" in (tmp_path / "c" / "cache.json").read_text()
    res = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "d"), "--estimator-size", "100"])
    assert res.exit_code != 0 and "multiple of 8" in res.output and "Traceback" not in res.output
