"""Paired training augmentations: the same geometry applied to a person crop and its joint heatmaps.

The paper (Section IV-A) resizes every image to 288x144 and augments with random
cropping, random erasing and horizontal flipping. Here every geometric step acts on
the image *and* on its 16 LIP joint heatmaps, so a joint's target peak stays on the
joint:

1. **resize** to ``input_size`` (a no-op for cache entries, which are stored at the
   training size); heatmaps are resized to ``input_size / stride`` when they differ.
2. **random crop with zero padding** (torchvision's ``RandomCrop(size, padding=pad)``):
   the image is padded by ``pad`` zero pixels on each side and an ``input_size`` window
   is cut at a uniform integer offset ``(oy, ox)`` in ``[0, 2 * pad]``, i.e. the content
   moves by ``(pad - oy, pad - ox)`` pixels. Heatmaps move by the *exact* same amount,
   ``shift / stride`` cells, which is fractional in general (e.g. 10 px = 2.5 cells at
   stride 4): the integer part is a slice, the fractional part a linear blend of the two
   neighbouring integer shifts (separably in x and y). On the map grid of
   :mod:`vireid.pose.codec` (cell ``c`` centred on input pixel ``c*s + s/2 - 0.5``) a
   pixel shift of ``d`` is a cell shift of exactly ``d / s``, so the blended peak stays
   on the joint; the blend lowers a Gaussian's peak by at most ~4 % at sigma 7 px,
   stride 4 (half a cell off-grid). Cells shifted in from outside are 0, like the
   padded pixels; a joint pushed out of the frame keeps its confidence (its map is
   simply cut off).
3. **horizontal flip** (p = 0.5): the image is mirrored, the heatmaps are mirrored *and*
   their left/right joint channels swapped (:func:`vireid.pose.joints.flip_permutation`),
   and the joint confidences are permuted the same way. Mirroring cells is exact on the
   grid above (``W = Wm * s``).
4. **normalisation**: BGR -> RGB, ``/ 255``, ImageNet mean/std; a one-channel (IR) image
   is repeated to three channels first.
5. **random erasing** on the image only (torchreid / Zhong et al. defaults: p = 0.5,
   area 2-40 %, aspect ratio 0.3-3.33, up to 100 attempts), applied after normalisation
   and filled with the per-channel constants (0.4914, 0.4822, 0.4465), as the AGW and
   hetero-center baselines' ``RandomErasing`` does. Heatmaps are never erased: the
   joints behind an occluder are still where they are.

Randomness comes only from the ``numpy.random.Generator`` passed to ``__call__`` (the
dataset derives one per (seed, epoch, index, draw)); the transforms hold no RNG state.

**Steps 4-5 on the device** (``TrainTransform(..., device_normalise=True)``, what
``vireid-train`` uses): the transform stops after the geometry and returns the image
as (3, H, W) uint8 RGB plus its erasing box ``erase`` = (y, x, h, w) (all zero: no
box), both drawn from the same generator as above. :func:`normalise_batch` then
normalises and erases a whole batch where it is trained (GPU), with the same values
as the CPU path. Data-loader workers send a quarter of the bytes and skip the
per-pixel float work, which is most of what is left of a sample's CPU cost once the
cache is read (``benchmarks/bench_data_pipeline.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from vireid.data.shards import HEATMAP_SCALE, dequantize_heatmaps
from vireid.pose.joints import NUM_JOINTS, flip_permutation

IMAGENET_MEAN: Tuple[float, float, float] = (0.485, 0.456, 0.406)   # RGB
IMAGENET_STD: Tuple[float, float, float] = (0.229, 0.224, 0.225)    # RGB
ERASE_FILL: Tuple[float, float, float] = (0.4914, 0.4822, 0.4465)    # torchreid / AGW RandomErasing

_FLIP = np.asarray(flip_permutation())


@dataclass(frozen=True)
class TransformConfig:
    """Augmentation settings; defaults are the paper's (288x144, crop, flip, erasing)."""

    input_size: Tuple[int, int] = (288, 144)   # (H, W) of the network input
    stride: int = 4                            # heatmap stride: maps are (H/stride, W/stride)
    pad: int = 10                              # random-crop zero padding in pixels (0 = no crop)
    flip_p: float = 0.5
    erase_p: float = 0.5
    erase_area: Tuple[float, float] = (0.02, 0.4)   # fraction of the image area
    erase_aspect: float = 0.3                        # aspect ratio in [r, 1/r]
    erase_attempts: int = 100
    erase_fill: Tuple[float, float, float] = ERASE_FILL   # values in the normalised image
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        h, w = self.input_size
        if h <= 0 or w <= 0 or h % self.stride or w % self.stride:
            raise ValueError(f"input size {self.input_size} is not a positive multiple of the heatmap stride "
                             f"{self.stride}")
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

    @property
    def heatmap_size(self) -> Tuple[int, int]:
        return self.input_size[0] // self.stride, self.input_size[1] // self.stride


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
    """Resize to ``input_size`` (bilinear, as the heatmap cache resizes its crops) if it differs;
    an (H, W, 1) image stays one-channel."""
    h, w = config.input_size
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
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




def normalise_batch(images: torch.Tensor, erase: Optional[torch.Tensor], config: TransformConfig) -> torch.Tensor:
    """Steps 4-5 of :class:`TrainTransform` for a batch, on the batch's device.

    Args:
        images: [B, 3, H, W] uint8 RGB (``TrainTransform(device_normalise=True)``).
        erase: [B, 4] integer boxes (y, x, h, w), h == 0 for none; or None.
        config: the transform's configuration (mean, std, erase_fill).

    Returns:
        [B, 3, H, W] float32: ``image * 1/(255 std) - mean/std`` (the CPU path's two
        float32 operations in the same order), erased boxes set to ``erase_fill``.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [B, 3, H, W] uint8, got {tuple(images.shape)} {images.dtype}")
    scale, bias = (torch.from_numpy(v).to(images.device).view(1, 3, 1, 1) for v in _scale_bias(config))
    out = images.to(torch.float32).mul_(scale).add_(bias)
    if erase is not None:
        b, _, h, w = images.shape
        erase = erase.to(images.device).long()
        if erase.shape != (b, 4):
            raise ValueError(f"erase must be [{b}, 4], got {tuple(erase.shape)}")
        y0, x0 = erase[:, 0].view(b, 1, 1), erase[:, 1].view(b, 1, 1)
        y1, x1 = y0 + erase[:, 2].view(b, 1, 1), x0 + erase[:, 3].view(b, 1, 1)
        ys = torch.arange(h, device=images.device).view(1, h, 1)
        xs = torch.arange(w, device=images.device).view(1, 1, w)
        inside = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)          # [B, H, W]
        fill = torch.tensor(config.erase_fill, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
        out = torch.where(inside.unsqueeze(1), fill, out)
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


def flip_shift_maps(maps: np.ndarray, dy: float, dx: float, flip: bool) -> np.ndarray:
    """Shift by (dy, dx) cells (fractional parts blended linearly) then (if ``flip``) mirror
    with the left/right channels swapped, on float32 or quantised uint8 maps (scaled by
    1/255), as float32 (J, H, W).

    Mirroring first and shifting by (dy, -dx) gives the same maps (the blend weights of a
    fractional shift mirror with it). Mirror and channel swap act on the compact input;
    the 1/255 of uint8 maps rides on the first blend; the blends are
    :func:`_shift_flat`'s contiguous runs."""
    j, h, w = maps.shape
    if maps.dtype not in (np.uint8, np.float32):
        maps = maps.astype(np.float32)
    if flip:
        maps = cv2.flip(np.ascontiguousarray(maps).reshape(j * h, w), 1).reshape(j, h, w)[_FLIP]
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
    """torchreid's RandomErasing box ``(y, x, h, w)``, or None (not applied / no box fits)."""
    if rng.random() >= config.erase_p:
        return None
    area = height * width
    lo, hi = config.erase_area
    r = config.erase_aspect
    for _ in range(config.erase_attempts):
        target = rng.uniform(lo, hi) * area
        aspect = rng.uniform(r, 1.0 / r)
        h = int(round(math.sqrt(target * aspect)))
        w = int(round(math.sqrt(target / aspect)))
        if 0 < h < height and 0 < w < width:
            y = int(rng.integers(0, height - h + 1))
            x = int(rng.integers(0, width - w + 1))
            return y, x, h, w
    return None


def _check_sample(sample: Mapping[str, Any]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8, heatmaps (16, Hm, Wm) float32 or uint8, weights (16,) float32).

    uint8 heatmaps are the cache's quantised maps (value = round(255 * h)): they are kept
    as uint8 here and scaled by 1/255 where they are first converted to float."""
    for key in ("image", "heatmaps"):
        if key not in sample:
            raise KeyError(f"sample has no {key!r} (keys: {sorted(sample)})")
    image = as_three_channels(np.asarray(sample["image"]))
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    heatmaps = np.asarray(sample["heatmaps"])
    if heatmaps.dtype != np.uint8:
        heatmaps = heatmaps.astype(np.float32, copy=False)
    if heatmaps.ndim != 3 or heatmaps.shape[0] != NUM_JOINTS:
        raise ValueError(f"heatmaps must be ({NUM_JOINTS}, Hm, Wm), got shape {heatmaps.shape}")
    weights = sample.get("confidence")
    weights = np.ones(NUM_JOINTS, np.float32) if weights is None else np.asarray(weights, np.float32).reshape(-1)
    if weights.shape != (NUM_JOINTS,):
        raise ValueError(f"confidence must have {NUM_JOINTS} values, got shape {weights.shape}")
    return image, heatmaps, weights


def maps_to_float(heatmaps: np.ndarray) -> np.ndarray:
    """float32 maps; uint8 (quantised) maps are scaled by 1/255."""
    if heatmaps.dtype == np.uint8:
        return dequantize_heatmaps(heatmaps)
    return heatmaps.astype(np.float32, copy=False)


def _to_tensors(image: np.ndarray, heatmaps: np.ndarray, weights: np.ndarray) -> Dict[str, torch.Tensor]:
    return {
        "image": torch.from_numpy(image),                                            # (3, H, W)
        "heatmaps": torch.from_numpy(np.ascontiguousarray(heatmaps, dtype=np.float32)),  # (16, Hm, Wm)
        "joint_weights": torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32)),  # (16,)
    }


# ---------------------------------------------------------------------------- transforms
class TrainTransform:
    """resize -> pad-and-crop -> flip -> normalise -> erase (see the module docstring).

    ``__call__(sample, rng)`` takes a cache entry (``image`` (H, W, 3) uint8 BGR,
    ``heatmaps`` (16, Hm, Wm) float32, ``confidence`` (16,)) and returns tensors
    ``image`` (3, H, W) float32, ``heatmaps`` (16, Hm', Wm') float32, ``joint_weights``
    (16,). ``rng`` should be given; when it is None a generator seeded with ``seed``
    is used (a fixed augmentation, for one-off use and inspection only).

    With ``device_normalise=True`` the image comes back as (3, H, W) uint8 RGB with
    ``erase`` (4,) int32 (y, x, h, w; zeros: none), for :func:`normalise_batch`; the
    random draws are the same, so both paths give the same training images.
    """

    def __init__(self, config: TransformConfig = TransformConfig(), seed: int = 0,
                 device_normalise: bool = False):
        self.config = config
        self.seed = int(seed)
        self.device_normalise = bool(device_normalise)

    def __call__(self, sample: Mapping[str, Any], rng: Optional[np.random.Generator] = None) -> Dict[str, torch.Tensor]:
        cfg = self.config
        rng = rng if rng is not None else np.random.default_rng(self.seed)
        image, heatmaps, weights = _check_sample(sample)
        image, heatmaps = resize_pair(image, heatmaps, cfg)
        dy = dx = 0
        if cfg.pad > 0:
            oy, ox = (int(v) for v in rng.integers(0, 2 * cfg.pad + 1, size=2))
            dy, dx = cfg.pad - oy, cfg.pad - ox                   # content shift in pixels
        flip = bool(rng.random() < cfg.flip_p)
        # shift then flip, done as flip then shift (see flip_shift_image / flip_shift_maps):
        # the same result as shifting, then mirroring, each separately, with fewer copies
        # (tests/data/reference_transforms.py holds that step-by-step version)
        image = flip_shift_image(image, dy, dx, flip)
        heatmaps = flip_shift_maps(heatmaps, dy / cfg.stride, dx / cfg.stride, flip)
        if flip:
            weights = weights[_FLIP]
        if self.device_normalise:
            box = erase_box(image.shape[0], image.shape[1], cfg, rng)
            out = _to_tensors(to_planar_rgb(image), heatmaps, weights)   # image (3, H, W) uint8
            out["erase"] = torch.tensor(box if box is not None else (0, 0, 0, 0), dtype=torch.int32)
            return out
        out = normalise(image, cfg)                               # (3, H, W) float32
        box = erase_box(out.shape[1], out.shape[2], cfg, rng)
        if box is not None:
            y, x, h, w = box
            out[:, y:y + h, x:x + w] = np.asarray(cfg.erase_fill, np.float32)[:, None, None]
        return _to_tensors(out, heatmaps, weights)


class EvalTransform:
    """resize -> normalise; deterministic (the ``rng`` argument is accepted and ignored)."""

    def __init__(self, config: TransformConfig = TransformConfig()):
        self.config = config

    def __call__(self, sample: Mapping[str, Any], rng: Optional[np.random.Generator] = None) -> Dict[str, torch.Tensor]:
        image, heatmaps, weights = _check_sample(sample)
        image, heatmaps = resize_pair(image, heatmaps, self.config)
        return _to_tensors(normalise(image, self.config), maps_to_float(heatmaps), weights)
