"""Gaussian joint heatmaps: rendering (targets, cache) and decoding (estimators).

Grid convention (GCCPM's ``datasets/lip.py``, ``shift = stride / 2 - 0.5``): map cell
``(r, c)`` of a stride-``s`` map covers input pixels ``[c*s, (c+1)*s)``, and its centre
is at input pixel ``c*s + s/2 - 0.5`` (pixel centres at integer coordinates, so pixel
``x`` spans ``[x - 0.5, x + 0.5)``). Equivalently, an input pixel ``x`` sits at map
coordinate ``(x + 0.5) / s - 0.5``: the plain ``x / s`` of mmpose-style code measured
with pixel *edges* at integers and cell centres at ``c + 0.5``. A joint at input pixel ``(x, y)`` gives
``exp(-d^2 / (2 sigma^2))`` at each cell, ``d`` the distance from the cell centre in
input pixels and ``sigma`` in input pixels, so the peak is 1 where a cell centre
falls on the joint; values below 0.01 (exponent > ln 100) are set to 0, as GCCPM
does. A missing joint (NaN or zero weight) gives an all-zero map and a zero target
weight (:func:`target_weights`).
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

CUTOFF_EXPONENT = math.log(100.0)


def cell_centres(n: int, stride: float) -> np.ndarray:
    """Input-pixel coordinates of the centres of ``n`` cells along one axis."""
    return np.arange(n, dtype=np.float64) * stride + (stride / 2.0 - 0.5)


def render_gaussian_heatmaps(keypoints: np.ndarray, weights: np.ndarray, heatmap_size: Tuple[int, int],
                             stride: float, sigma: float) -> np.ndarray:
    """``keypoints`` (J, 2 or 3) input pixels, ``weights`` (J,) -> float32 maps (J, H, W) in [0, 1].

    A third keypoint column (visibility/confidence) is ignored: ``weights`` decides. A
    joint with weight <= 0 or a NaN coordinate gets a zero map. Weights only select
    joints; the peak is always 1 (confidences are stored and used separately).
    ``sigma`` is in input pixels (GCCPM: 7 at stride 8 on 256x256).
    """
    kps = np.asarray(keypoints, dtype=np.float64)
    if kps.ndim != 2 or kps.shape[1] not in (2, 3):
        raise ValueError(f"expected keypoints (J, 2) or (J, 3), got shape {kps.shape}")
    kps = kps[:, :2]
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if kps.shape[0] != w.shape[0]:
        raise ValueError(f"{kps.shape[0]} keypoints but {w.shape[0]} weights")
    if sigma <= 0 or stride <= 0:
        raise ValueError(f"sigma and stride must be positive (got {sigma}, {stride})")
    h, wd = heatmap_size
    ys, xs = cell_centres(h, stride), cell_centres(wd, stride)
    present = (w > 0) & np.isfinite(kps).all(axis=1)
    dx2 = (xs[None, :] - np.where(present, kps[:, 0], 0.0)[:, None]) ** 2     # (J, W)
    dy2 = (ys[None, :] - np.where(present, kps[:, 1], 0.0)[:, None]) ** 2     # (J, H)
    exponent = (dy2[:, :, None] + dx2[:, None, :]) / (2.0 * sigma * sigma)    # (J, H, W)
    maps = np.where(exponent > CUTOFF_EXPONENT, 0.0, np.exp(-exponent))
    maps[~present] = 0.0
    return maps.astype(np.float32)


def target_weights(keypoints: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-joint loss weights (J,) float32: ``weights`` where the joint is present, else 0.

    A joint is present when its coordinates are finite and its weight is > 0 (exactly
    the joints :func:`render_gaussian_heatmaps` draws); NaN weights count as 0.
    """
    kps = np.asarray(keypoints, dtype=np.float64)[:, :2]
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if kps.shape[0] != w.shape[0]:
        raise ValueError(f"{kps.shape[0]} keypoints but {w.shape[0]} weights")
    present = np.isfinite(kps).all(axis=1) & np.isfinite(w) & (w > 0)
    return np.where(present, w, 0.0).astype(np.float32)


def background_map(maps: np.ndarray) -> np.ndarray:
    """GCCPM's 17th target map: ``1 - max over joints`` (J, H, W) -> (H, W).

    1 where no joint is near, 0 on a joint's peak; as in GCCPM's ``_generate_keypoint_maps``
    it is computed after the joint maps, so missing joints (zero maps) do not affect it.
    """
    return (1.0 - np.asarray(maps).max(axis=0)).astype(np.float32)


def merge_heatmaps(maps: np.ndarray) -> np.ndarray:
    """The paper's single heatmap per image (eq. 16): max over joint maps, (J, H, W) -> (H, W)."""
    return np.asarray(maps).max(axis=0)


def decode_heatmaps(maps: np.ndarray, stride: float) -> Tuple[np.ndarray, np.ndarray]:
    """Joint maps (J, H, W) -> keypoints (J, 2) in input pixels and peak values (J,).

    Each joint's location is its map's argmax cell centre, moved a quarter of a cell
    towards the larger of its two neighbours on each axis (the usual sub-cell
    refinement of heatmap decoders); border cells are not moved along that axis. For a
    Gaussian away from the border this is within a quarter of a cell of the true position.
    A map whose maximum is 0 (a missing joint) decodes to its first cell with score 0.
    """
    if np.ndim(maps) != 3:
        raise ValueError(f"expected maps (J, H, W), got shape {np.shape(maps)}")
    maps = np.asarray(maps, dtype=np.float64)
    j, h, w = maps.shape
    flat = maps.reshape(j, -1)
    idx = flat.argmax(axis=1)
    rows, cols = np.divmod(idx, w)
    scores = flat[np.arange(j), idx]
    dx = np.zeros(j)
    dy = np.zeros(j)
    for k in range(j):
        r, c = rows[k], cols[k]
        if 0 < c < w - 1:
            dx[k] = 0.25 * np.sign(maps[k, r, c + 1] - maps[k, r, c - 1])
        if 0 < r < h - 1:
            dy[k] = 0.25 * np.sign(maps[k, r + 1, c] - maps[k, r - 1, c])
    xs = (cols + dx) * stride + (stride / 2.0 - 0.5)
    ys = (rows + dy) * stride + (stride / 2.0 - 0.5)
    return np.stack([xs, ys], axis=1).astype(np.float32), scores.astype(np.float32)
