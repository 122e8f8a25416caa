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
from pipeline.verify import verify_cache
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
    assert verify_cache(out) == []
