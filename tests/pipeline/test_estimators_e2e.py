"""Every estimator through the whole heatmap job on synthetic SYSU-MM01, RegDB and LIP trees."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.synth import synthesize
from pipeline.verify import inspect_cache
from vireid.cache.reader import HeatmapCache

LAYOUTS = {"sysu": dict(ids=4, images_per_camera=1), "regdb": dict(ids=2, images_per_camera=2),
           "lip": dict(ids=3, images_per_camera=2)}


def _blazepose_available() -> bool:
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        if os.environ.get("VIREID_REQUIRE_BLAZEPOSE") == "1":
            pytest.fail("mediapipe is missing but VIREID_REQUIRE_BLAZEPOSE=1")
        return False
    return True


# the keypoints estimator reads the side file of SYSU/RegDB trees; LIP's keypoints are its CSVs
CASES = [(layout, est) for layout in sorted(LAYOUTS) for est in ("lip", "blazepose", "keypoints")
         if not (est == "keypoints" and layout == "lip")]


@pytest.mark.parametrize("layout,estimator", CASES)
def test_heatmaps_end_to_end(layout, estimator, tmp_path, golden_dir):
    if estimator == "blazepose" and not _blazepose_available():
        pytest.skip("mediapipe (the blazepose extra) is not installed")
    root = tmp_path / layout
    synthesize(layout, root, seed=2, **LAYOUTS[layout])
    args = ["heatmaps", "--dataset", layout, "--root", str(root), "--out", str(tmp_path / "cache"),
            "--estimator", estimator, "--input-size", "64x32", "--sigma", "2", "--no-progress"]
    if estimator == "lip":
        args += ["--weights", str(golden_dir / "lip_gccpm_2stage.pth")]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert inspect_cache(tmp_path / "cache").problems == []
    cache = HeatmapCache(tmp_path / "cache")
    assert cache.attrs["estimator"]["estimator"] == estimator and cache.attrs["dataset"] == layout
    entry = cache.get(0)
    assert entry["heatmaps"].shape == (16, 16, 8) and entry["image"].shape == (64, 32, 3)
    if estimator == "keypoints":                    # ground truth: the person's joints are there
        assert (cache.metadata()["confidence"] > 0).mean() > 0.8
