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
   hetero-center baselines' ``RandomErasing`` does. By default heatmaps are never erased:
   the joints behind an occluder are still where they are. ``erase_targets`` (the
   release's recipe) also zeroes the heatmap cells under the image's box (``same``) or
   under a second box drawn after it (``independent``; :func:`~vireid.inputs.augment.erase_cells`).

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

The steps and their settings (:class:`TransformConfig`) are in :mod:`vireid.inputs.augment`
(re-exported here); ``input_size`` and ``stride`` are the cache's
:class:`~vireid.cache.geometry.Geometry` (``TransformConfig(cache.geometry, ...)``).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import torch

from vireid.inputs.augment import (  # noqa: F401  (the steps and settings are re-exported)
    ERASE_FILL,
    ERASE_TARGETS,
    FLIP,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TransformConfig,
    as_three_channels,
    erase_box,
    erase_cells,
    erased_cells,
    flip_shift_image,
    flip_shift_maps,
    maps_to_float,
    mirror_maps,
    normalise,
    resize_image,
    resize_pair,
    shift_image,
    to_planar_rgb,
)
from vireid.inputs.batch_steps import normalise_batch, shift_heatmaps  # noqa: F401  (re-exported)
from vireid.pose.joints import NUM_JOINTS

__all__ = ["ERASE_FILL", "ERASE_TARGETS", "HEATMAP_MODES", "IMAGENET_MEAN", "IMAGENET_STD", "EvalTransform",
           "TrainTransform", "TransformConfig", "as_three_channels", "erase_box", "erase_cells", "erased_cells",
           "flip_shift_image", "flip_shift_maps", "maps_to_float", "mirror_maps", "normalise", "normalise_batch",
           "resize_image", "resize_pair", "shift_heatmaps", "shift_image", "to_planar_rgb"]

#: ``TrainTransform(heatmaps=...)``: shifted float32 here, as stored for the device, or none
HEATMAP_MODES = ("float", "stored", "none")


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



def _to_tensors(image: np.ndarray, heatmaps: np.ndarray, weights: np.ndarray) -> Dict[str, torch.Tensor]:
    return {
        "image": torch.from_numpy(image),                                            # (3, H, W)
        "heatmaps": torch.from_numpy(np.ascontiguousarray(heatmaps, dtype=np.float32)),  # (16, Hm, Wm)
        "joint_weights": torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32)),  # (16,)
    }



def _erase_targets(heatmaps: np.ndarray, box: Optional[Tuple[int, int, int, int]], hw: Tuple[int, int],
                   cfg: TransformConfig, rng: np.random.Generator) -> np.ndarray:
    """Step 5 on the maps (``cfg.erase_targets``): unchanged (``none``), the cells under the
    image's ``box`` zeroed (``same``) or those under a second box drawn now (``independent``)."""
    if cfg.erase_targets == "none":
        return heatmaps
    if cfg.erase_targets == "independent":
        box = erase_box(int(hw[0]), int(hw[1]), cfg, rng)
    return heatmaps if box is None else erase_cells(heatmaps, box, cfg.stride)


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

    ``heatmaps``: ``'float'`` (default) shifts the maps here, float32 out; ``'stored'`` gives
    them as the cache stores them (uint8, a quarter of the bytes to copy to the device),
    mirrored with the image, and ``heatmap_shift`` (2,) int32 (dy, dx pixels, ``dx`` after
    the mirror) for :func:`shift_heatmaps` on the device, which gives the ``'float'`` maps
    bit for bit; ``'none'`` leaves out ``heatmaps`` and ``joint_weights`` (no loss uses
    them: pose loss off). The random draws are the same in every mode.
    """

    def __init__(self, config: TransformConfig = TransformConfig(), seed: int = 0,
                 device_normalise: bool = False, heatmaps: str = "float"):
        if heatmaps not in HEATMAP_MODES:
            raise ValueError(f"heatmaps must be one of {HEATMAP_MODES}, got {heatmaps!r}")
        if heatmaps == "stored" and config.erase_targets != "none":
            # the erased cells are those under the box in the shifted maps, which 'stored' shifts later
            raise ValueError(f"heatmaps='stored' cannot erase the targets (erase_targets: {config.erase_targets}); "
                             "use heatmaps='float'")
        self.config = config
        self.seed = int(seed)
        self.device_normalise = bool(device_normalise)
        self.heatmaps = heatmaps

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
        # (tests/inputs/reference_transforms.py holds that step-by-step version)
        image = flip_shift_image(image, dy, dx, flip)
        extra: Dict[str, torch.Tensor] = {}
        if self.heatmaps == "float":
            heatmaps = flip_shift_maps(heatmaps, dy / cfg.stride, dx / cfg.stride, flip)
        elif self.heatmaps == "stored":
            if heatmaps.dtype != np.uint8:
                raise ValueError("heatmaps='stored' needs the cache's uint8 maps at its own heatmap size")
            if flip:
                heatmaps = mirror_maps(heatmaps)
            extra["heatmap_shift"] = torch.tensor((dy, -dx if flip else dx), dtype=torch.int32)
        if flip:
            weights = weights[FLIP]
        if self.device_normalise:
            box = erase_box(image.shape[0], image.shape[1], cfg, rng)
            heatmaps = _erase_targets(heatmaps, box, image.shape[:2], cfg, rng)
            out = self._tensors(to_planar_rgb(image), heatmaps, weights)   # image (3, H, W) uint8
            out["erase"] = torch.tensor(box if box is not None else (0, 0, 0, 0), dtype=torch.int32)
            return {**out, **extra}
        out = normalise(image, cfg)                               # (3, H, W) float32
        box = erase_box(out.shape[1], out.shape[2], cfg, rng)
        heatmaps = _erase_targets(heatmaps, box, out.shape[1:], cfg, rng)
        if box is not None:
            y, x, h, w = box
            out[:, y:y + h, x:x + w] = np.asarray(cfg.erase_fill, np.float32)[:, None, None]
        return {**self._tensors(out, heatmaps, weights), **extra}

    def _tensors(self, image: np.ndarray, heatmaps: np.ndarray, weights: np.ndarray) -> Dict[str, torch.Tensor]:
        if self.heatmaps == "none":
            return {"image": torch.from_numpy(image)}
        out = _to_tensors(image, heatmaps, weights)
        if self.heatmaps == "stored":
            out["heatmaps"] = torch.from_numpy(np.ascontiguousarray(heatmaps))          # (16, Hm, Wm) uint8
        return out


class EvalTransform:
    """resize -> normalise; deterministic (the ``rng`` argument is accepted and ignored)."""

    def __init__(self, config: TransformConfig = TransformConfig()):
        self.config = config

    def __call__(self, sample: Mapping[str, Any], rng: Optional[np.random.Generator] = None) -> Dict[str, torch.Tensor]:
        image, heatmaps, weights = _check_sample(sample)
        image, heatmaps = resize_pair(image, heatmaps, self.config)
        return _to_tensors(normalise(image, self.config), maps_to_float(heatmaps), weights)
