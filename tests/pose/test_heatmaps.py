"""Gaussian heatmaps, hand-computed."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vireid.pose.heatmaps import (background_map, cell_centres, decode_heatmaps, merge_heatmaps, target_weights,
                                  render_gaussian_heatmaps)


def test_peak_one_at_a_cell_centre_and_one_sigma_away():
    # stride 4: cell c has centre 4c + 1.5; joint exactly at cell (2, 3) centre = (13.5, 9.5)
    kps = np.array([[13.5, 9.5], [np.nan, np.nan]])
    maps = render_gaussian_heatmaps(kps, np.array([1.0, 1.0]), (8, 6), stride=4, sigma=4.0)
    assert maps.shape == (2, 8, 6) and maps.dtype == np.float32
    assert maps[0, 2, 3] == pytest.approx(1.0)
    assert maps[0, 2, 4] == pytest.approx(math.exp(-0.5), rel=1e-6)      # one cell = 4 px = 1 sigma
    assert maps[0, 3, 4] == pytest.approx(math.exp(-1.0), rel=1e-6)
    assert maps[0, 2, 0] == pytest.approx(math.exp(-4.5), rel=1e-6)     # 3 sigma: 0.011 > 0.01, kept
    assert maps[0, 6, 3] == 0.0                                          # 4 sigma: exp(-8) < 0.01, cut
    assert not maps[1].any()                                             # NaN joint: zero map


def test_zero_weight_means_zero_map():
    maps = render_gaussian_heatmaps(np.array([[5.0, 5.0], [5.0, 5.0]]), np.array([1.0, 0.0]), (4, 4), 4, 2.0)
    assert maps[0].max() > 0.5 and not maps[1].any()
    with pytest.raises(ValueError, match="2 keypoints but 1 weights"):
        render_gaussian_heatmaps(np.zeros((2, 2)), np.ones(1), (4, 4), 4, 2.0)


def test_render_then_decode_round_trip():
    rng = np.random.default_rng(0)
    kps = np.stack([rng.uniform(8, 135, 16), rng.uniform(8, 279, 16)], axis=1)
    maps = render_gaussian_heatmaps(kps, np.ones(16), (72, 36), stride=4, sigma=7.0)
    xy, score = decode_heatmaps(maps, stride=4)
    assert np.abs(xy - kps).max() <= 4 * 0.25 + 1e-4                     # within 1/4 of a cell
    assert np.all(score > 0.9)


def test_background_and_merge():
    maps = np.zeros((2, 3, 3), np.float32)
    maps[0, 1, 1] = 0.8
    maps[1, 0, 0] = 0.3
    np.testing.assert_allclose(background_map(maps)[1, 1], 0.2, rtol=1e-6)
    assert background_map(maps)[2, 2] == 1.0
    assert merge_heatmaps(maps)[1, 1] == pytest.approx(0.8) and merge_heatmaps(maps)[0, 0] == pytest.approx(0.3)
    np.testing.assert_allclose(cell_centres(3, 8), [3.5, 11.5, 19.5])


def _gccpm_reference(x: float, y: float, shape, stride: int, sigma: float) -> np.ndarray:
    """GCCPM's per-cell loop (datasets/lip.py ``_add_gaussian``), written out for one joint."""
    out = np.zeros(shape)
    for r in range(shape[0]):
        for c in range(shape[1]):
            d2 = (c * stride + stride / 2 - 0.5 - x) ** 2 + (r * stride + stride / 2 - 0.5 - y) ** 2
            e = d2 / 2 / sigma / sigma
            out[r, c] = 0.0 if e > 4.6052 else min(1.0, math.exp(-e))
    return out


def test_matches_gccpm_rule_at_its_training_geometry():
    # 256x256 input, stride 8, sigma 7: the LIP estimator's targets
    kps = np.array([[100.3, 57.8], [3.0, 250.0]])
    maps = render_gaussian_heatmaps(kps, np.ones(2), (32, 32), stride=8, sigma=7.0)
    for j in range(2):
        np.testing.assert_allclose(maps[j], _gccpm_reference(*kps[j], (32, 32), 8, 7.0), atol=1e-6)


def test_three_column_keypoints_and_target_weights():
    kps3 = np.array([[13.5, 9.5, 0.0], [np.nan, np.nan, 0.0], [5.0, 5.0, 1.0]])
    w = np.array([0.7, 1.0, 0.0])
    maps = render_gaussian_heatmaps(kps3, w, (8, 6), stride=4, sigma=4.0)
    np.testing.assert_array_equal(maps, render_gaussian_heatmaps(kps3[:, :2], w, (8, 6), 4, 4.0))
    assert maps[0, 2, 3] == pytest.approx(1.0)                           # weight does not scale the peak
    np.testing.assert_allclose(target_weights(kps3, w), [0.7, 0.0, 0.0])  # NaN joint -> weight 0
    assert target_weights(kps3, np.array([np.nan, 1.0, 1.0]))[0] == 0.0
    with pytest.raises(ValueError, match=r"\(J, 2\) or \(J, 3\)"):
        render_gaussian_heatmaps(np.zeros((2, 4)), np.ones(2), (4, 4), 4, 2.0)


def test_round_trip_within_a_quarter_cell():
    rng = np.random.default_rng(1)
    for stride, hw in ((4, (72, 36)), (8, (32, 32))):
        h, w = hw
        # joints at least two cells from the border (border cells get no sub-cell step)
        kps = np.stack([rng.uniform(2 * stride, (w - 2) * stride, 16),
                        rng.uniform(2 * stride, (h - 2) * stride, 16)], axis=1)
        maps = render_gaussian_heatmaps(kps, np.ones(16), hw, stride=stride, sigma=7.0)
        xy, _ = decode_heatmaps(maps, stride=stride)
        err_cells = np.abs(xy - kps) / stride
        assert err_cells.max() <= 0.25 + 1e-5, err_cells.max()


def test_decode_known_peak_and_missing_map():
    maps = np.zeros((2, 5, 5), np.float32)
    maps[0, 2, 3] = 1.0
    maps[0, 2, 4] = 0.5                                                  # right neighbour larger
    maps[0, 1, 3] = 0.2                                                  # upper neighbour larger
    xy, score = decode_heatmaps(maps, stride=8)
    np.testing.assert_allclose(xy[0], [(3 + 0.25) * 8 + 3.5, (2 - 0.25) * 8 + 3.5])
    assert score[0] == pytest.approx(1.0) and score[1] == 0.0
    with pytest.raises(ValueError, match=r"\(J, H, W\)"):
        decode_heatmaps(np.zeros((5, 5)), 8)


def test_background_ignores_missing_joints():
    kps = np.array([[10.0, 10.0], [np.nan, np.nan]])
    maps = render_gaussian_heatmaps(kps, np.ones(2), (8, 8), stride=4, sigma=3.0)
    bg = background_map(maps)
    np.testing.assert_allclose(bg, 1.0 - maps[0], atol=1e-7)
    np.testing.assert_allclose(merge_heatmaps(maps), maps[0])
