"""The step-by-step reference of :class:`vireid.inputs.transforms.TrainTransform`'s geometry:
shift the maps by (dy, dx) cells (integer slices blended linearly for the fractional
part), then mirror image and maps and swap the left/right joint channels. The library
does both in one pass (``flip_shift_maps``, ``flip_shift_image``); tests check it
against these. ``erase_cells_reference``: the heatmap cells under an erased image box,
cell by cell (the library's ``erase_cells`` computes the two index ranges).
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from vireid.pose.joints import flip_permutation

FLIP = np.asarray(flip_permutation())


def _shift_int(maps: np.ndarray, n: int, axis: int) -> np.ndarray:
    """``out[i] = maps[i - n]`` along ``axis`` (zeros where ``i - n`` is outside)."""
    if n == 0:
        return maps
    out = np.zeros_like(maps)
    size = maps.shape[axis]
    if abs(n) >= size:
        return out
    src = [slice(None)] * maps.ndim
    dst = [slice(None)] * maps.ndim
    src[axis], dst[axis] = (slice(0, size - n), slice(n, size)) if n > 0 else (slice(-n, size), slice(0, size + n))
    out[tuple(dst)] = maps[tuple(src)]
    return out


def shift_maps(maps: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Move (J, H, W) maps by (dy, dx) cells, fractional parts by linear interpolation."""
    for shift, axis in ((dy, 1), (dx, 2)):
        n = math.floor(shift)
        f = shift - n
        moved = _shift_int(maps, n, axis)
        if f > 1e-9:
            moved = moved * np.float32(1.0 - f) + _shift_int(maps, n + 1, axis) * np.float32(f)
        maps = moved
    return maps


def flip_pair(image: np.ndarray, heatmaps: np.ndarray, weights: np.ndarray
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror image and maps; swap left/right joint channels and confidences."""
    return image[:, ::-1], heatmaps[FLIP, :, ::-1], weights[FLIP]


def erase_cells_reference(maps: np.ndarray, box: Tuple[int, int, int, int], stride: int) -> np.ndarray:
    """Zero every cell whose centre (input pixel ``c * stride + stride / 2 - 0.5``) lies in the
    box's pixel area ``[y - 0.5, y + h - 0.5) x [x - 0.5, x + w - 0.5)``, one cell at a time."""
    y, x, h, w = box
    out = maps.copy()
    for r in range(maps.shape[1]):
        for c in range(maps.shape[2]):
            cy, cx = r * stride + stride / 2 - 0.5, c * stride + stride / 2 - 0.5
            if y - 0.5 <= cy < y + h - 0.5 and x - 0.5 <= cx < x + w - 0.5:
                out[:, r, c] = 0
    return out
