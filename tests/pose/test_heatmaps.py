"""Gaussian heatmaps, hand-computed."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vireid.pose.heatmaps import (background_map, cell_centres, decode_heatmaps, merge_heatmaps,
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
    assert np.abs(xy - kps).max() <= 4 * 0.75                            # within 3/4 of a cell
    assert np.all(score > 0.9)


def test_background_and_merge():
    maps = np.zeros((2, 3, 3), np.float32)
    maps[0, 1, 1] = 0.8
    maps[1, 0, 0] = 0.3
    np.testing.assert_allclose(background_map(maps)[1, 1], 0.2, rtol=1e-6)
    assert background_map(maps)[2, 2] == 1.0
    assert merge_heatmaps(maps)[1, 1] == pytest.approx(0.8) and merge_heatmaps(maps)[0, 0] == pytest.approx(0.3)
    np.testing.assert_allclose(cell_centres(3, 8), [3.5, 11.5, 19.5])
