"""The steps of the paired augmentation and their settings (:class:`TransformConfig`); the
transforms that chain them are in :mod:`vireid.inputs.transforms`, whose docstring says what
each step does to the image and to its heatmaps.

The geometry (input size, heatmap stride) is not restated here: a :class:`TransformConfig`
takes the cache's :class:`~vireid.cache.geometry.Geometry` (``HeatmapCache.geometry``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from vireid.cache.format import HEATMAP_SCALE, dequantize_heatmaps, resize_crop
from vireid.cache.geometry import PAPER, Geometry
from vireid.pose.joints import flip_permutation

IMAGENET_MEAN: Tuple[float, float, float] = (0.485, 0.456, 0.406)   # RGB
IMAGENET_STD: Tuple[float, float, float] = (0.229, 0.224, 0.225)    # RGB
ERASE_FILL: Tuple[float, float, float] = (0.4914, 0.4822, 0.4465)    # torchreid / AGW RandomErasing

FLIP = np.asarray(flip_permutation())
#: Values of ``TransformConfig.erase_targets``: what random erasing does to the pose targets.
ERASE_TARGETS = ("none", "same", "independent")
#: Values of ``TransformConfig.erase_aspect_sampling``: how an erasing box's aspect ratio is drawn.
ERASE_ASPECT_SAMPLING = ("uniform", "log")


@dataclass(frozen=True)
class TransformConfig:
    """Augmentation settings; defaults are the paper's (288x144, crop, flip, erasing).

    ``geometry``: the input size (H, W) and the heatmap stride (maps of (H/stride, W/stride)),
    the cache's (:attr:`vireid.cache.reader.HeatmapCache.geometry`).

    ``erase_targets``: ``none`` (default: the joints behind an occluder are still there),
    ``same`` (the heatmap cells under the image's erased box are zeroed: :func:`erase_cells`)
    or ``independent`` (the cells under a second box, drawn as the image's is, are zeroed:
    what the release's second ``RandomErasing`` call on the target map does).
    ``erase_aspect_sampling``: the box's aspect ratio uniform in ``[r, 1/r]`` (``uniform``,
    torchreid's) or log-uniform (``log``, torchvision's ``RandomErasing``, the release's)."""

    geometry: Geometry = PAPER
    pad: int = 10                              # random-crop zero padding in pixels (0 = no crop)
    flip_p: float = 0.5
    erase_p: float = 0.5
    erase_area: Tuple[float, float] = (0.02, 0.4)   # fraction of the image area
    erase_aspect: float = 0.3                        # aspect ratio in [r, 1/r]
    erase_attempts: int = 100
    erase_fill: Tuple[float, float, float] = ERASE_FILL   # values in the normalised image
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    erase_targets: str = "none"
    erase_aspect_sampling: str = "uniform"

    def __post_init__(self) -> None:
        if not isinstance(self.geometry, Geometry):
            raise TypeError(f"geometry must be a Geometry, got {self.geometry!r}")
        if self.pad < 0:
            raise ValueError(f"pad must be >= 0, got {self.pad}")
        for name in ("flip_p", "erase_p"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        lo, hi = self.erase_area
        if not 0.0 < lo <= hi < 1.0:
            raise ValueError(f"erase_area must satisfy 0 < lo <= hi < 1, got {self.erase_area}")
        if not 0.0 < self.erase_aspect <= 1.0:
            raise ValueError(f"erase_aspect must be in (0, 1], got {self.erase_aspect}")
        if self.erase_aspect_sampling not in ERASE_ASPECT_SAMPLING:
            raise ValueError(f"erase_aspect_sampling must be one of {', '.join(ERASE_ASPECT_SAMPLING)}, "
                             f"got {self.erase_aspect_sampling!r}")
        if self.erase_attempts < 1:
            raise ValueError(f"erase_attempts must be >= 1, got {self.erase_attempts}")
        if self.erase_targets not in ERASE_TARGETS:
            raise ValueError(f"erase_targets must be one of {', '.join(ERASE_TARGETS)}, got {self.erase_targets!r}")

    @property
    def input_size(self) -> Tuple[int, int]:
        return self.geometry.input_size

    @property
    def stride(self) -> int:
        return self.geometry.stride

    @property
    def heatmap_size(self) -> Tuple[int, int]:
        return self.geometry.heatmap_size


# ---------------------------------------------------------------------------- steps
def as_three_channels(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1) -> (H, W, 3) by repetition (IR); (H, W, 3) unchanged."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W), (H, W, 1) or (H, W, 3) image, got shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image


def resize_image(image: np.ndarray, config: TransformConfig) -> np.ndarray:
    """Resize to ``input_size`` with the heatmap cache's filter (:func:`resize_crop`: features of
    any image match those of a cached crop) if it differs; an (H, W, 1) image stays one-channel."""
    h, w = config.input_size
    if image.shape[:2] != (h, w):
        image = resize_crop(image, (h, w))
        if image.ndim == 2:
            image = image[:, :, None]
    return image


def resize_pair(image: np.ndarray, heatmaps: np.ndarray, config: TransformConfig) -> Tuple[np.ndarray, np.ndarray]:
    """Resize the image to ``input_size`` and the maps to ``heatmap_size`` (bilinear) if they differ."""
    image = resize_image(image, config)
    hm_h, hm_w = config.heatmap_size
    if heatmaps.shape[1:] != (hm_h, hm_w):
        heatmaps = maps_to_float(heatmaps)
        # (J, h, w) -> (h, w, J) -> resize -> (J, Hm, Wm)
        hwj = cv2.resize(np.ascontiguousarray(heatmaps.transpose(1, 2, 0)), (hm_w, hm_h),
                         interpolation=cv2.INTER_LINEAR)
        heatmaps = hwj.reshape(hm_h, hm_w, -1).transpose(2, 0, 1)
    return image, heatmaps


def shift_image(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move the content by (dy, dx) whole pixels, zero-filling what comes in (pad + crop)."""
    if dy == 0 and dx == 0:
        return image
    h, w = image.shape[:2]
    out = np.zeros_like(image)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = image[ys, xs]
    return out


def to_planar_rgb(image_bgr: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (3, H, W) uint8 RGB (planar copies, no arithmetic: ~20x faster
    than converting the interleaved image)."""
    planes = cv2.split(np.ascontiguousarray(image_bgr))      # 3 x (H, W) uint8, B, G, R
    out = np.empty((3, *image_bgr.shape[:2]), np.uint8)
    for c in range(3):
        out[c] = planes[2 - c]
    return out


def _scale_bias(config: TransformConfig) -> Tuple[np.ndarray, np.ndarray]:
    """(3,) float32 per-channel (RGB) ``scale`` and ``bias``: normalised = pixel * scale + bias."""
    std = np.asarray(config.std, np.float32) * np.float32(255.0)
    return np.float32(1.0) / std, -np.asarray(config.mean, np.float32) * np.float32(255.0) / std


def normalise(image_bgr: np.ndarray, config: TransformConfig) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (3, H, W) float32 RGB, ImageNet-normalised."""
    scale, bias = _scale_bias(config)
    out = to_planar_rgb(image_bgr).astype(np.float32)        # (3, H, W) RGB
    out *= scale[:, None, None]
    out += bias[:, None, None]
    return out


def flip_shift_image(image: np.ndarray, dy: int, dx: int, flip: bool) -> np.ndarray:
    """``shift_image`` by (dy, dx) then (if ``flip``) mirror, as one copy: mirroring first
    and shifting by (dy, -dx) is the same image (whole pixels)."""
    if flip:
        image = cv2.flip(np.ascontiguousarray(image), 1)
        if image.ndim == 2:
            image = image[:, :, None]
        dx = -dx
    return shift_image(image, dy, dx)


def _taps(shift: float) -> List[Tuple[int, float]]:
    """A shift of ``shift`` cells as (whole-cell shift, weight) pairs: ``floor`` and ``floor + 1``
    blended linearly (one tap when ``shift`` is whole)."""
    n = math.floor(shift)
    f = shift - n
    return [(n, 1.0 - f)] + ([(n + 1, f)] if f > 1e-9 else [])


def _shift_flat(maps: np.ndarray, taps: Sequence[Tuple[int, float]], axis: int, scale: float) -> np.ndarray:
    """float32 ``scale * maps`` (J, H, W) moved along ``axis`` (1 rows, 2 columns) by the
    blended whole-cell ``taps``, zeros shifted in.

    Each tap is one shift of all J*H*W values as a single contiguous run (a row is W
    values, a column 1), which is several times faster than numpy over short rows; that
    wraps values across row (or channel) ends into the first or last few rows (columns)
    along ``axis``, so those few are then recomputed from their true neighbours."""
    size = maps.shape[axis]
    step = maps.shape[2] if axis == 1 else 1
    flat = maps.reshape(-1)
    total = flat.size
    out = np.zeros(maps.shape, np.float32)
    out_flat = out.reshape(-1)
    first = True
    for k, weight in taps:
        off = abs(k) * step
        if abs(k) >= size:
            continue
        src, dst = (flat[:total - off], out_flat[off:]) if k >= 0 else (flat[off:], out_flat[:total - off])
        wk = np.float32(weight * scale)
        if first:
            np.multiply(src, wk, out=dst)
            first = False
        else:
            dst += src * wk
    lo = max([k for k, _ in taps if k > 0], default=0)        # [0, lo) and [size + hi, size)
    hi = min([k for k, _ in taps if k < 0], default=0)        # received wrapped values
    for x in sorted({*range(min(lo, size)), *range(max(size + hi, 0), size)}):
        at = [slice(None)] * 3
        at[axis] = x
        line = np.zeros(out[tuple(at)].shape, np.float32)
        for k, weight in taps:
            if 0 <= x - k < size:
                at[axis] = x - k
                line += maps[tuple(at)] * np.float32(weight * scale)
        at[axis] = x
        out[tuple(at)] = line
    return out


def mirror_maps(maps: np.ndarray) -> np.ndarray:
    """(J, H, W) maps mirrored left-right with the left/right joint channels swapped (any dtype)."""
    j, h, w = maps.shape
    return cv2.flip(np.ascontiguousarray(maps).reshape(j * h, w), 1).reshape(j, h, w)[FLIP]


def flip_shift_maps(maps: np.ndarray, dy: float, dx: float, flip: bool) -> np.ndarray:
    """Shift by (dy, dx) cells (fractional parts blended linearly) then (if ``flip``) mirror
    with the left/right channels swapped, on float32 or quantised uint8 maps (scaled by
    1/255), as float32 (J, H, W).

    Mirroring first and shifting by (dy, -dx) gives the same maps (the blend weights of a
    fractional shift mirror with it). Mirror and channel swap act on the compact input;
    the 1/255 of uint8 maps rides on the first blend; the blends are
    :func:`_shift_flat`'s contiguous runs."""
    if maps.dtype not in (np.uint8, np.float32):
        maps = maps.astype(np.float32)
    if flip:
        maps = mirror_maps(maps)
        dx = -dx
    ty, tx = _taps(dy), _taps(dx)
    if ty == [(0, 1.0)] and tx == [(0, 1.0)]:
        return np.ascontiguousarray(maps_to_float(maps))
    scale = 1.0 / HEATMAP_SCALE if maps.dtype == np.uint8 else 1.0
    out = np.ascontiguousarray(maps).astype(np.float32, copy=False)
    for taps, axis in ((ty, 1), (tx, 2)):
        if taps != [(0, 1.0)]:
            out = _shift_flat(out, taps, axis, scale)
            scale = 1.0
    return out


def erase_box(height: int, width: int, config: TransformConfig, rng: np.random.Generator
              ) -> Optional[Tuple[int, int, int, int]]:
    """torchreid's RandomErasing box ``(y, x, h, w)`` (torchvision's with
    ``erase_aspect_sampling='log'``), or None (not applied / no box fits)."""
    if rng.random() >= config.erase_p:
        return None
    area = height * width
    lo, hi = config.erase_area
    r = config.erase_aspect
    for _ in range(config.erase_attempts):
        target = rng.uniform(lo, hi) * area
        if config.erase_aspect_sampling == "log":
            aspect = math.exp(rng.uniform(math.log(r), -math.log(r)))
        else:
            aspect = rng.uniform(r, 1.0 / r)
        h = int(round(math.sqrt(target * aspect)))
        w = int(round(math.sqrt(target / aspect)))
        if 0 < h < height and 0 < w < width:
            y = int(rng.integers(0, height - h + 1))
            x = int(rng.integers(0, width - w + 1))
            return y, x, h, w
    return None


def erased_cells(box: Tuple[int, int, int, int], stride: int, map_hw: Tuple[int, int]) -> Tuple[slice, slice]:
    """The heatmap cells an image box ``(y, x, h, w)`` covers, as (rows, columns) slices: those
    whose centre (input pixel ``c * stride + stride / 2 - 0.5``, :mod:`vireid.pose.codec`'s grid)
    lies inside the box's pixels ``[y - 0.5, y + h - 0.5)`` (so a cell goes with the image
    pixels that cover the larger part of it)."""
    y, x, h, w = (int(v) for v in box)

    def span(start: int, length: int, size: int) -> slice:
        # cells c with start <= c * s + s / 2 < start + length, i.e. c >= (start - s/2) / s
        first = -((stride - 2 * start) // (2 * stride))                    # ceil((2 start - s) / 2s)
        stop = -((stride - 2 * (start + length)) // (2 * stride))
        return slice(min(max(first, 0), size), min(max(stop, 0), size))

    return span(y, h, map_hw[0]), span(x, w, map_hw[1])


def erase_cells(heatmaps: np.ndarray, box: Tuple[int, int, int, int], stride: int) -> np.ndarray:
    """(J, Hm, Wm) maps with the cells under the image box ``(y, x, h, w)`` set to 0 (a copy:
    the input is not changed); see :func:`erased_cells`."""
    rows, cols = erased_cells(box, stride, heatmaps.shape[1:])
    out = np.array(heatmaps, copy=True)
    out[:, rows, cols] = 0
    return out


def maps_to_float(heatmaps: np.ndarray) -> np.ndarray:
    """float32 maps; uint8 (quantised) maps are scaled by 1/255."""
    if heatmaps.dtype == np.uint8:
        return dequantize_heatmaps(heatmaps)
    return heatmaps.astype(np.float32, copy=False)

