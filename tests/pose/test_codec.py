"""The heatmap codec: Gaussian maps and their decoding, hand-computed."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vireid.pose.codec import HeatmapCodec, background_map, cell_centres, fit_image, fit_matrix, prepare_input


def _codec(map_hw, stride, sigma=None) -> HeatmapCodec:
    return HeatmapCodec((map_hw[0] * stride, map_hw[1] * stride), stride, sigma)


def test_peak_one_at_a_cell_centre_and_one_sigma_away():
    # stride 4: cell c has centre 4c + 1.5; joint exactly at cell (2, 3) centre = (13.5, 9.5)
    kps = np.array([[13.5, 9.5], [np.nan, np.nan]])
    maps, _ = HeatmapCodec((32, 24), stride=4, sigma=4.0).encode(kps, np.array([1.0, 1.0]))
    assert maps.shape == (2, 8, 6) and maps.dtype == np.float32
    assert maps[0, 2, 3] == pytest.approx(1.0)
    assert maps[0, 2, 4] == pytest.approx(math.exp(-0.5), rel=1e-6)      # one cell = 4 px = 1 sigma
    assert maps[0, 3, 4] == pytest.approx(math.exp(-1.0), rel=1e-6)
    assert maps[0, 2, 0] == pytest.approx(math.exp(-4.5), rel=1e-6)     # 3 sigma: 0.011 > 0.01, kept
    assert maps[0, 6, 3] == 0.0                                          # 4 sigma: exp(-8) < 0.01, cut
    assert not maps[1].any()                                             # NaN joint: zero map


def test_zero_weight_means_zero_map():
    codec = _codec((4, 4), 4, 2.0)
    maps, _ = codec.encode(np.array([[5.0, 5.0], [5.0, 5.0]]), np.array([1.0, 0.0]))
    assert maps[0].max() > 0.5 and not maps[1].any()
    with pytest.raises(ValueError, match="2 keypoints but 1 weights"):
        codec.encode(np.zeros((2, 2)), np.ones(1))


def test_render_then_decode_round_trip():
    rng = np.random.default_rng(0)
    kps = np.stack([rng.uniform(8, 135, 16), rng.uniform(8, 279, 16)], axis=1)
    codec = HeatmapCodec((288, 144), stride=4, sigma=7.0)
    maps, _ = codec.encode(kps, np.ones(16))
    assert maps.shape == (16, 72, 36) and codec.map_size == (72, 36)
    xy, score = codec.decode(maps)
    assert np.abs(xy - kps).max() <= 4 * 0.25 + 1e-4                     # within 1/4 of a cell
    assert np.all(score > 0.9)


def test_background_and_merge():
    maps = np.zeros((2, 3, 3), np.float32)
    maps[0, 1, 1] = 0.8
    maps[1, 0, 0] = 0.3
    np.testing.assert_allclose(background_map(maps)[1, 1], 0.2, rtol=1e-6)
    assert background_map(maps)[2, 2] == 1.0
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
    maps, _ = HeatmapCodec((256, 256), stride=8, sigma=7.0).encode(kps, np.ones(2))
    for j in range(2):
        np.testing.assert_allclose(maps[j], _gccpm_reference(*kps[j], (32, 32), 8, 7.0), atol=1e-6)


def test_three_column_keypoints_and_target_weights():
    kps3 = np.array([[13.5, 9.5, 0.0], [np.nan, np.nan, 0.0], [5.0, 5.0, 1.0]])
    w = np.array([0.7, 1.0, 0.0])
    codec = _codec((8, 6), 4, 4.0)
    maps, weights = codec.encode(kps3, w)
    np.testing.assert_array_equal(maps, codec.encode(kps3[:, :2], w)[0])
    assert maps[0, 2, 3] == pytest.approx(1.0)                           # weight does not scale the peak
    np.testing.assert_allclose(weights, [0.7, 0.0, 0.0])                 # NaN joint -> weight 0
    assert weights.dtype == np.float32
    assert codec.encode(kps3, np.array([np.nan, 1.0, 1.0]))[1][0] == 0.0
    with pytest.raises(ValueError, match=r"\(J, 2\) or \(J, 3\)"):
        codec.encode(np.zeros((2, 4)), np.ones(2))


def test_round_trip_within_a_quarter_cell():
    rng = np.random.default_rng(1)
    for stride, hw in ((4, (72, 36)), (8, (32, 32))):
        h, w = hw
        # joints at least two cells from the border (border cells get no sub-cell step)
        kps = np.stack([rng.uniform(2 * stride, (w - 2) * stride, 16),
                        rng.uniform(2 * stride, (h - 2) * stride, 16)], axis=1)
        codec = _codec(hw, stride, 7.0)
        xy, _ = codec.decode(codec.encode(kps, np.ones(16))[0])
        err_cells = np.abs(xy - kps) / stride
        assert err_cells.max() <= 0.25 + 1e-5, err_cells.max()


def test_decode_known_peak_and_missing_map():
    maps = np.zeros((2, 5, 5), np.float32)
    maps[0, 2, 3] = 1.0
    maps[0, 2, 4] = 0.5                                                  # right neighbour larger
    maps[0, 1, 3] = 0.2                                                  # upper neighbour larger
    codec = _codec((5, 5), 8)
    xy, score = codec.decode(maps)
    np.testing.assert_allclose(xy[0], [(3 + 0.25) * 8 + 3.5, (2 - 0.25) * 8 + 3.5])
    assert score[0] == pytest.approx(1.0) and score[1] == 0.0
    with pytest.raises(ValueError, match=r"\(J, H, W\)"):
        codec.decode(np.zeros((5, 5)))


def test_background_ignores_missing_joints():
    kps = np.array([[10.0, 10.0], [np.nan, np.nan]])
    maps, _ = _codec((8, 8), 4, 3.0).encode(kps, np.ones(2))
    bg = background_map(maps)
    np.testing.assert_allclose(bg, 1.0 - maps[0], atol=1e-7)


# geometries (input H, W, stride, sigma): GCCPM's, the cache's, and smaller ones
GEOMETRIES = [(256, 256, 8, 7.0), (128, 128, 8, 3.5), (288, 144, 4, 7.0), (96, 48, 4, 2.0), (64, 32, 2, 1.5)]
# hand-chosen points as fractions of (W, H): on a cell centre, on a cell edge, off-grid
FRACTIONS = [(0.5, 0.5), (0.25, 0.75), (0.3, 0.2), (0.71, 0.43), (0.62, 0.88), (0.17, 0.13)]


@pytest.mark.parametrize("h,w,stride,sigma", GEOMETRIES)
def test_encode_then_decode_is_within_a_quarter_cell(h, w, stride, sigma):
    codec = HeatmapCodec((h, w), stride, sigma)
    kps = np.array([[fx * w, fy * h] for fx, fy in FRACTIONS])
    kps[0] = cell_centres(w // stride, stride)[w // stride // 2], cell_centres(h // stride, stride)[h // stride // 2]
    kps[1] = [w // 4 * 1.0, h * 3 // 4 * 1.0]                          # a multiple of the stride: a cell edge
    maps, weights = codec.encode(kps, np.ones(len(kps)))
    assert maps.shape == (len(kps), h // stride, w // stride) and (weights == 1).all()
    xy, score = codec.decode(maps)
    assert np.abs(xy - kps).max() <= stride / 4 + 1e-6, np.abs(xy - kps).max() / stride
    np.testing.assert_array_equal(xy[0], kps[0])                        # on a cell centre: exact
    # the peak is sampled at most half a cell off on each axis: d^2 <= 2 (s/2)^2
    assert (score >= math.exp(-stride ** 2 / (4 * sigma ** 2)) - 1e-6).all()


def test_a_missing_joint_decodes_with_score_zero():
    codec = HeatmapCodec((64, 32), 4, 2.0)
    kps = np.array([[10.0, 20.0], [np.nan, np.nan], [20.0, 40.0]])
    maps, weights = codec.encode(kps, np.array([1.0, 1.0, 0.0]))           # NaN joint, zero-weight joint
    np.testing.assert_array_equal(weights, [1.0, 0.0, 0.0])
    xy, score = codec.decode(maps)
    # (10, 20) is (0.5, 1.5) px from the nearest cell centre (9.5, 21.5): exp(-2.5 / (2 * 2^2))
    assert score[0] == pytest.approx(math.exp(-2.5 / 8), rel=1e-6) and score[1] == 0.0 and score[2] == 0.0
    np.testing.assert_array_equal(xy[1:], [[1.5, 1.5], [1.5, 1.5]])      # the first cell's centre


def test_decode_within_a_window_ignores_the_rest():
    codec = HeatmapCodec((256, 256), 8)
    maps = np.zeros((2, 32, 32), np.float32)
    maps[:, 5, 2] = 1.0                                                 # column 2: outside the window
    maps[:, 9, 12] = 0.5
    maps[1, 9, 13] = 0.25                                               # right neighbour larger
    xy, score = codec.decode(maps, within=(0, 32, 8, 24))
    np.testing.assert_array_equal(score, [0.5, 0.5])
    np.testing.assert_array_equal(xy, [[12 * 8 + 3.5, 9 * 8 + 3.5], [12.25 * 8 + 3.5, 9 * 8 + 3.5]])
    maps[0, 9, 8] = 0.9                                                 # on the window's edge: no sub-cell step
    maps[0, 9, 9] = 0.1
    assert codec.decode(maps, within=(0, 32, 8, 24))[0][0, 0] == 8 * 8 + 3.5
    with pytest.raises(ValueError, match="not inside"):
        codec.decode(maps, within=(0, 33, 8, 24))


def test_decode_batch_is_decode_per_image():
    rng = np.random.default_rng(3)
    maps = rng.random((3, 4, 6, 5)).astype(np.float32)
    codec = HeatmapCodec((6 * 4, 5 * 4), 4)
    xy, score = codec.decode_batch(maps)
    assert xy.shape == (3, 4, 2) and score.shape == (3, 4)
    for i in range(3):
        one = codec.decode(maps[i])
        np.testing.assert_array_equal(xy[i], one[0])
        np.testing.assert_array_equal(score[i], one[1])
    with pytest.raises(ValueError, match=r"\[N, J, h, w\]"):
        codec.decode_batch(maps[0])


def test_codec_checks_its_geometry():
    with pytest.raises(ValueError, match="not a positive multiple of the stride 8"):
        HeatmapCodec((100, 64), 8, 3.0)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        HeatmapCodec((64, 64), 2.5)
    with pytest.raises(ValueError, match="sigma must be positive"):
        HeatmapCodec((64, 64), 8, 0.0)
    with pytest.raises(ValueError, match="no sigma"):
        HeatmapCodec((64, 64), 8).encode(np.zeros((1, 2)), np.ones(1))
    with pytest.raises(ValueError, match="maps of 8x4 cells, but this codec's are 8x8"):
        HeatmapCodec((64, 64), 8).decode(np.zeros((1, 8, 4)))
    assert HeatmapCodec((64, 32), 4.0).stride == 4 and HeatmapCodec((64, 32), 4).map_size == (16, 8)


# ---------------------------------------------------------------- the input fit
def test_fit_matrix_hand_values():
    # 100x50 image into 64: scale 64/100, image centre (24.5, 49.5) -> input centre (31.5, 31.5)
    np.testing.assert_allclose(fit_matrix(100, 50, 64), [[0.64, 0, 31.5 - 0.64 * 24.5], [0, 0.64, 31.5 - 0.64 * 49.5]],
                               atol=1e-12)
    # a wide 50x100 image: the width is the longer side
    np.testing.assert_allclose(fit_matrix(50, 100, 64), [[0.64, 0, 31.5 - 0.64 * 49.5], [0, 0.64, 31.5 - 0.64 * 24.5]],
                               atol=1e-12)


def test_prepare_input_fits_a_2to1_crop_and_maps_back():
    x, fit = prepare_input(np.full((288, 144, 3), 200, np.uint8), 256)
    assert x.shape == (3, 256, 256) and x.dtype == np.float32
    assert x[0, 10, 10] == 0.0 and x[0, 10, 63] == 0.0 and x[0, 10, 192] == 0.0   # grey padding is 0
    assert (x[:, :, 64:192] == np.float32((200 - 128) / 256)).all()                  # 288x144 -> 256x128
    assert fit.cells(8) == (0, 32, 8, 24)
    # a peak at map cell (row 20, col 11) of the 32x32 stride-8 map -> crop pixels
    maps = np.zeros((16, 32, 32), np.float32)
    maps[3, 20, 11] = 0.9
    xy, score = HeatmapCodec((256, 256), 8).decode(maps, within=fit.cells(8))
    cx, cy = 11 * 8 + 3.5, 20 * 8 + 3.5                                 # cell centre, input pixels
    np.testing.assert_allclose(fit.to_image(xy[3]), [(cx - 64 + 0.5) / (128 / 144) - 0.5, (cy + 0.5) / (256 / 288) - 0.5],
                               atol=1e-9)
    assert score[3] == pytest.approx(0.9)
    # map cell (col 8, row 0) is the crop's first column of cells: its centre, input pixel
    # (67.5, 3.5), is crop pixel ((67.5 - 64 + 0.5) * 1.125 - 0.5, 4 * 1.125 - 0.5)
    np.testing.assert_allclose(fit.to_image(np.array([67.5, 3.5])), [4.0, 4.0], atol=1e-9)
    pts = np.random.default_rng(0).uniform([0, 0], [143, 287], (10, 2))
    np.testing.assert_allclose(fit.to_image(fit.to_input(pts)), pts, atol=1e-9)


def test_peaks_in_the_padding_are_ignored():
    _, fit = prepare_input(np.zeros((256, 128, 3), np.uint8), 256)
    maps = np.zeros((16, 32, 32), np.float32)
    maps[:, 5, 2] = 1.0                                               # column 2: padding
    maps[:, 9, 12] = 0.5                                              # inside the crop
    xy, score = HeatmapCodec((256, 256), 8).decode(maps, within=fit.cells(8))
    assert np.all(score == 0.5)
    assert np.all(fit.to_image(xy)[:, 0] >= 0)


def test_a_wide_crop_is_fitted_by_its_width_not_squashed():
    # 120x200 into 256: scale 1.28 on both axes, rows 51.2 .. 204.8 hold the image
    x, fit = prepare_input(np.full((120, 200, 3), 200, np.uint8), 256)
    np.testing.assert_allclose(fit.matrix[:, :2], [[1.28, 0], [0, 1.28]], atol=1e-12)
    assert (x[:, :51] == 0).all() and (x[:, 206:] == 0).all()
    # the outermost input columns sample just outside the image (x = -0.11): blended with grey
    assert (x[:, 52:204, 1:255] == np.float32((200 - 128) / 256)).all()
    assert 0 < x[0, 100, 0] < np.float32((200 - 128) / 256)
    assert fit.cells(8) == (6, 26, 0, 32)
    np.testing.assert_allclose(fit.to_image(np.array([127.5, 127.5])), [99.5, 59.5], atol=1e-9)
    assert fit_image(120, 200, 256).matrix.tobytes() == fit.matrix.tobytes()
    with pytest.raises(ValueError, match="HxWx3"):
        prepare_input(np.zeros((120, 200), np.uint8), 256)
