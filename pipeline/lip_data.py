"""LIP training data for the GCCPM pose estimator: augmentation, targets, datasets.

The recipe is GCCPM's (Osokin, the paper's ref. [34]; its ``datasets/lip.py`` and
``datasets/transformations.py``), applied in this order to each training image:

1. body masking (p 0.5): a grey (128) quadrilateral over part of the body, drawn
   around a random point of the image's central third, each corner up to 30 % of the
   image's size away from it;
2. channel permutation (p 0.5): a random order of the three colour channels;
3. rotation by an angle uniform in [-40, 40] degrees about the image centre, the
   canvas grown to hold the whole rotated image;
4. scale (p 0.5): by a factor uniform in [0.8, 1.5) about the centre, the canvas
   keeping its size (cropped when enlarged, padded when shrunk);
5. crop-pad: the canvas resized so its longer side is the input size and centred on
   a square ``size x size`` input padded with grey 128 (0 after normalisation). A LIP
   image is already a crop around one person, so centring the canvas centres the
   person, as GCCPM does. Without rotation and scale this is the inference fit
   (:func:`vireid.pose.codec.fit_matrix`, used by :func:`vireid.pose.codec.prepare_input`);
6. horizontal flip (p 0.5): ``x -> size - 1 - x`` and the left/right joints swap
   (:func:`vireid.pose.joints.flip_keypoints`), so e.g. the R_Wrist target channel of
   the flipped image holds the joint that was annotated L_Wrist.

Steps 3-5 are :func:`vireid.pose.codec.fit_matrix`; with step 6 they are one affine
matrix (:func:`augment_matrix`) applied to the image by a single ``cv2.warpAffine``
(:func:`vireid.pose.codec.warp_input`) and to the keypoints exactly (GCCPM warps three
times and rounds offsets to whole pixels). Every random draw comes from a
``numpy.random.Generator`` seeded by ``(seed, epoch, index)``, so a sample is the
same whatever the worker that loads it, and a resumed run sees the same data.

Targets (:func:`build_targets`, encoded by :attr:`TargetConfig.codec`): 16 Gaussian maps
of peak 1, sigma 7 input pixels at stride 8 (GCCPM's, at any input size: see
:attr:`TargetConfig.sigma_px`), plus
GCCPM's background map
``1 - max over joints``, and a weight per channel for the loss:

* GCCPM renders every annotated joint, occluded ones included, and has no loss mask:
  a joint missing from the annotation gets an all-zero map that is trained like any
  other (its ``l2_loss`` takes no mask). Its visibility flag is parsed but unused.
* Here, by default (``occluded='ignore'``, ``missing='ignore'``), the map channel of
  an occluded or missing joint has weight 0, so the network is neither taught to put
  a peak on an occluded joint's guessed position nor to put none where a joint is
  merely unannotated. Occluded joints still count in the background map (their
  position is annotated), missing ones cannot. ``occluded='train'`` and
  ``missing='absent'`` give GCCPM's exact behaviour (all weights 1).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from vireid.data.images import load_image
from vireid.data.manifest import Record
from vireid.pose.codec import (PAD_VALUE, STRIDE, HeatmapCodec, background_map, check_input_side, fit_matrix,
                               normalise_input, prepare_input, transform_points, warp_input)
from vireid.pose.joints import NUM_JOINTS, flip_keypoints

log = logging.getLogger(__name__)

BASE_SIZE = 256            # GCCPM's input size, where sigma is 7 pixels
BASE_SIGMA = 7.0
#: GCCPM's sigma in map cells (7 px at stride 8): the default sigma is this many strides at any input size
SIGMA_CELLS = BASE_SIGMA / STRIDE
OCCLUDED_POLICIES = ("ignore", "train")
MISSING_POLICIES = ("ignore", "absent")


class LipDataError(ValueError):
    """An image cannot be read or the data does not fit the configuration."""


@dataclass(frozen=True)
class AugmentConfig:
    """GCCPM's augmentation (``train.py``: masking, channel permutation, rotate 40, crop-pad, flip)."""

    mask_prob: float = 0.5
    mask_fraction: float = 0.3
    channel_prob: float = 0.5
    max_rotate_deg: float = 40.0
    scale_prob: float = 0.5
    scale_range: Tuple[float, float] = (0.8, 1.5)
    flip_prob: float = 0.5

    @staticmethod
    def none() -> "AugmentConfig":
        """No augmentation: only the crop-pad fit (validation, tests)."""
        return AugmentConfig(mask_prob=0.0, channel_prob=0.0, max_rotate_deg=0.0, scale_prob=0.0, flip_prob=0.0)

    @staticmethod
    def light() -> "AugmentConfig":
        """A short run's augmentation (``--augment light``, the demo's): no masking, rotation within
        15 degrees, scale in [0.9, 1.2); channel order and flip as GCCPM. GCCPM's masking and
        40-degree rotations make a harder task than upright pedestrian crops need, which a run of a
        few hundred steps cannot afford (docs/findings.md: the demo's estimator)."""
        return AugmentConfig(mask_prob=0.0, max_rotate_deg=15.0, scale_range=(0.9, 1.2))

    @staticmethod
    def preset(name: str) -> "AugmentConfig":
        """``'gccpm'`` (the default recipe), ``'light'`` or ``'none'``."""
        presets = {"gccpm": AugmentConfig, "light": AugmentConfig.light, "none": AugmentConfig.none}
        if name not in presets:
            raise ValueError(f"augmentation {name!r}: choose one of {', '.join(presets)}")
        return presets[name]()


@dataclass(frozen=True)
class AugmentParams:
    """One draw of the augmentation (see the module docstring for each field's step)."""

    angle_deg: float = 0.0
    scale: float = 1.0
    flip: bool = False
    channel_order: Optional[Tuple[int, int, int]] = None
    mask_polygon: Optional[Tuple[Tuple[int, int], ...]] = None


@dataclass(frozen=True)
class TargetConfig:
    """Heatmap targets: GCCPM's stride 8 and sigma 7 at a 256 input; loss-weight policies."""

    input_size: int = BASE_SIZE
    stride: int = STRIDE
    sigma: Optional[float] = None          # None: 7 px at stride 8 (GCCPM's 0.875 cell), whatever the input size
    occluded: str = "ignore"               # 'ignore' (weight 0) | 'train' (GCCPM)
    missing: str = "ignore"                # 'ignore' (weight 0) | 'absent' (zero map, weight 1: GCCPM)

    def __post_init__(self) -> None:
        check_input_side(self.input_size, self.stride)
        if self.occluded not in OCCLUDED_POLICIES:
            raise ValueError(f"occluded policy {self.occluded!r}: choose one of {', '.join(OCCLUDED_POLICIES)}")
        if self.missing not in MISSING_POLICIES:
            raise ValueError(f"missing policy {self.missing!r}: choose one of {', '.join(MISSING_POLICIES)}")

    @property
    def sigma_px(self) -> float:
        """Sigma in input pixels: ``sigma``, else GCCPM's 7 px scaled with the stride (not the input
        size: at a fixed stride of 8, 7 * size / 256 would shrink the Gaussian below one cell at
        small inputs -- 2.6 px at 96, where every neighbour cell falls under GCCPM's 0.01 cut-off and
        each joint's target is a single cell; measured on 1,000 synthetic LIP ids at 96: val PCKh
        8.7 after one epoch with it, 25.3 with 7 px)."""
        return float(self.sigma) if self.sigma is not None else SIGMA_CELLS * self.stride

    @property
    def codec(self) -> HeatmapCodec:
        """The codec of these targets: ``input_size`` square, ``stride``, ``sigma_px``."""
        return HeatmapCodec((self.input_size, self.input_size), self.stride, self.sigma_px)

    @property
    def map_size(self) -> int:
        return self.codec.map_size[0]


# ---------------------------------------------------------------- keypoints
def record_keypoints(record: Record) -> np.ndarray:
    """A LIP record's keypoints as ``(16, 3)`` float64: x, y, occluded (1/0); NaN rows for missing joints."""
    if record.keypoints is None or len(record.keypoints) != NUM_JOINTS:
        raise LipDataError(f"{record.path}: expected {NUM_JOINTS} annotated joint rows, got "
                           f"{None if record.keypoints is None else len(record.keypoints)}")
    kp = np.array([[np.nan if v is None else float(v) for v in row] for row in record.keypoints], np.float64)
    missing = ~np.isfinite(kp[:, :2]).all(axis=1)
    kp[missing] = np.nan
    return kp


def read_image(root: Path, record: Record) -> np.ndarray:
    """The record's image as HxWx3 uint8 BGR; :class:`LipDataError` naming the file otherwise."""
    path = Path(root) / record.path
    loaded = load_image(path)
    if isinstance(loaded, str):
        raise LipDataError(f"{path}: {loaded}")
    return loaded[0]


# ---------------------------------------------------------------- augmentation
def sample_params(rng: np.random.Generator, height: int, width: int, cfg: AugmentConfig) -> AugmentParams:
    """Draw one :class:`AugmentParams` for an image of ``height x width`` from ``rng``."""
    polygon = None
    if rng.random() < cfg.mask_prob:
        cx = int(rng.integers(width // 3, max(width // 3 + 1, width - width // 3)))
        cy = int(rng.integers(height // 3, max(height // 3 + 1, height - height // 3)))
        dx_max = max(1, int(width * cfg.mask_fraction))
        dy_max = max(1, int(height * cfg.mask_fraction))
        d = rng.integers(1, [dx_max + 1, dy_max + 1], size=(4, 2))
        signs = ((-1, -1), (1, -1), (1, 1), (-1, 1))
        polygon = tuple((cx + sx * int(d[k, 0]), cy + sy * int(d[k, 1])) for k, (sx, sy) in enumerate(signs))
    order = None
    if rng.random() < cfg.channel_prob:
        order = tuple(int(c) for c in rng.permutation(3))
    angle = float(rng.uniform(-cfg.max_rotate_deg, cfg.max_rotate_deg)) if cfg.max_rotate_deg > 0 else 0.0
    scale = float(rng.uniform(*cfg.scale_range)) if rng.random() < cfg.scale_prob else 1.0
    flip = bool(rng.random() < cfg.flip_prob)
    return AugmentParams(angle_deg=angle, scale=scale, flip=flip, channel_order=order, mask_polygon=polygon)


def augment_matrix(height: int, width: int, params: AugmentParams, size: int) -> np.ndarray:
    """2x3 affine from image pixels to input pixels for steps 3-6 (pixel centres at integers).

    The fit of :func:`vireid.pose.codec.fit_matrix` with ``params.angle_deg`` and
    ``params.scale`` (identity ``params`` give the inference fit exactly), then the
    optional mirror ``x -> size - 1 - x``.
    """
    m = fit_matrix(height, width, size, params.angle_deg, params.scale)
    if params.flip:
        m = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0.0, 0.0, 1.0]])
    return m.astype(np.float64)


def apply_augment(image: np.ndarray, keypoints: np.ndarray, params: AugmentParams,
                  size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Augment one image (HxWx3 uint8 BGR) and its keypoints ``(16, 3)`` with fixed ``params``.

    Returns the ``size x size`` uint8 input and the keypoints in its pixels, rows
    swapped left/right when flipped (occlusion flags travel with their joint).
    """
    h, w = image.shape[:2]
    img = image.copy()
    if params.mask_polygon is not None:
        cv2.fillConvexPoly(img, np.array(params.mask_polygon, np.int32), (PAD_VALUE,) * 3)
    if params.channel_order is not None:
        img = np.ascontiguousarray(img[:, :, list(params.channel_order)])
    m = augment_matrix(h, w, params, size)
    out = warp_input(img, m, size)
    kp = np.asarray(keypoints, np.float64).copy()
    if params.flip:
        # undo the mirror in the matrix for the coordinates, then let flip_keypoints mirror and swap rows
        unflipped = augment_matrix(h, w, AugmentParams(params.angle_deg, params.scale, False), size)
        kp[:, :2] = transform_points(kp[:, :2], unflipped)
        kp = flip_keypoints(kp, size)
    else:
        kp[:, :2] = transform_points(kp[:, :2], m)
    return out, kp




# ---------------------------------------------------------------- targets
def build_targets(keypoints: np.ndarray, cfg: TargetConfig) -> Tuple[np.ndarray, np.ndarray]:
    """Keypoints ``(16, 3)`` in input pixels -> maps ``(17, S/8, S/8)`` and channel weights ``(17,)``.

    Every annotated joint (visible or occluded) is rendered (peak 1 at its position);
    the 17th map is ``1 - max`` over them. Weights: 1 for visible joints and the
    background; occluded and missing joints per ``cfg.occluded`` / ``cfg.missing``.
    """
    kp = np.asarray(keypoints, np.float64)
    annotated = np.isfinite(kp[:, :2]).all(axis=1)
    occluded = annotated & (np.nan_to_num(kp[:, 2], nan=0.0) > 0.5)
    joints, _ = cfg.codec.encode(kp[:, :2], annotated.astype(np.float32))
    maps = np.concatenate([joints, background_map(joints)[None]], axis=0)
    weights = np.ones(NUM_JOINTS + 1, np.float32)
    if cfg.occluded == "ignore":
        weights[:NUM_JOINTS][occluded] = 0.0
    if cfg.missing == "ignore":
        weights[:NUM_JOINTS][~annotated] = 0.0
    return maps.astype(np.float32), weights


# ---------------------------------------------------------------- datasets
def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one training sample: depends only on (seed, epoch, index)."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


class LipTrainSet:
    """Augmented training samples: ``{'image': 3xSxS, 'maps': 17xS/8xS/8, 'weights': 17}``.

    A map-style data set for ``torch.utils.data.DataLoader`` (this module does not
    import torch, so the CLI stays quick to start).

    Call :meth:`set_epoch` before each epoch (with non-persistent workers the copies in
    the workers see it) so every epoch draws new augmentations, reproducibly.
    """

    def __init__(self, root: Path, records: Sequence[Record], targets: TargetConfig,
                 augment: AugmentConfig = AugmentConfig(), seed: int = 0):
        self.root = Path(root)
        self.records = list(records)
        self.keypoints = [record_keypoints(r) for r in self.records]
        self.targets = targets
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
        image = read_image(self.root, self.records[index])
        rng = sample_rng(self.seed, self.epoch, index)
        params = sample_params(rng, image.shape[0], image.shape[1], self.augment)
        img, kp = apply_augment(image, self.keypoints[index], params, self.targets.input_size)
        maps, weights = build_targets(kp, self.targets)
        return {"image": normalise_input(img), "maps": maps, "weights": weights}


class LipValSet:
    """Unaugmented validation inputs (the inference fit, :func:`vireid.pose.codec.prepare_input`)
    with what maps predictions back.

    Items: ``{'image': 3xSxS, 'inverse': 2x3 affine input -> image pixels, 'keypoints': 16x3}``.
    """

    def __init__(self, root: Path, records: Sequence[Record], input_size: int):
        self.root = Path(root)
        self.records = list(records)
        self.keypoints = [record_keypoints(r) for r in self.records]
        self.input_size = int(input_size)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
        image, fit = prepare_input(read_image(self.root, self.records[index]), self.input_size)
        return {"image": image, "inverse": fit.inverse, "keypoints": self.keypoints[index]}


def split_records(records: Sequence[Record], split: str) -> List[Record]:
    """The LIP records of one split ('train' | 'val'), in manifest order."""
    return [r for r in records if r.split == split]
