"""The heatmap cache's format: what a cache folder and its HDF5 shards hold, and the codecs
of a row (heatmap quantisation, image encoding).

A cache is a folder::

    CACHE/cache.json          attributes that made it (estimator, weights sha256, joints,
                              flip pairs, sizes, sigma, manifest hash, code version, ...)
    CACHE/shard-00000.h5 ...  ``shard_size`` images each, in manifest order
    CACHE/index.json          manifest path -> (shard, row); written last, when complete
    CACHE/skipped.json        images skipped under ``--on-error skip``, with the reason

Each shard holds, per image (row):

=============  ======================  ==============================================
dataset        shape / dtype           content
=============  ======================  ==============================================
image          (N, H, W, 3) uint8      the crop resized to ``input_size``, BGR, raw
                                       pixels (``image_format="raw"``, the default) ...
image          (N,) vlen uint8         ... or JPEG (``image_format="jpeg"``)
heatmaps       (N, 16, Hm, Wm) uint8   Gaussian joint maps, value = round(255 * h)
confidence     (N, 16) float32         the estimator's per-joint confidence (0 = missing)
keypoints      (N, 16, 2) float32      joint (x, y) in the stored image's pixels, NaN if missing
pid, camid     (N,) int32 / int16      identity and camera number of the manifest record
modality       (N,) uint8              0 RGB, 1 IR
record         (N,) int64              index of the record in the manifest
path           (N,) vlen str           the record's relative path
checksum       (N, 3) uint64           XXH3-64 of the row's image, heatmaps and metadata
                                       (:mod:`vireid.data.rowsums`; attribute
                                       ``row_checksum``; absent in shards written before)
=============  ======================  ==============================================

Heatmaps are stored as uint8 with scale 1/255: the absolute error against the float32
maps is at most 0.5/255 < 0.002 (tested). Shard files are only ever created under a
temporary name and renamed when complete (:func:`vireid.io.atomic_path`).

Written by :mod:`vireid.data.shard_writer` (``vireid-prep heatmaps``), read by
:class:`vireid.data.shards.HeatmapCache`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

from vireid import __version__
from vireid.data.errors import CacheError, DamagedRowError  # noqa: F401  (re-exported)
from vireid.data.geometry import PAPER, Geometry
from vireid.pose.codec import HeatmapCodec
from vireid.pose.joints import FLIP_PAIRS, JOINT_NAMES

CACHE_FORMAT = "vireid-heatmap-cache/1"
#: The filter crops are resized with (``cache.json``'s ``resize_filter``; :func:`resize_crop`):
#: Pillow's LANCZOS, the ``Image.ANTIALIAS`` of the AGW / DDAG loaders and the paper's release.
RESIZE_FILTER = "pil-lanczos"
#: How a cache made before ``resize_filter`` was recorded resized its crops (OpenCV's
#: ``INTER_LINEAR``, no anti-aliasing when shrinking), as :func:`resize_filter_of` reports it.
LEGACY_RESIZE_FILTER = "linear (made before the filter was recorded)"
HEATMAP_SCALE = 255.0
MODALITY_CODES = {"rgb": 0, "ir": 1}
IMAGE_FORMATS = ("raw", "jpeg")
#: the pose estimators ``vireid-prep heatmaps`` can make a cache with (``cache.json``'s
#: ``estimator.estimator``); ``lip`` is the paper's (GCCPM pre-trained on LIP)
ESTIMATOR_NAMES = ("lip", "blazepose", "keypoints")


@dataclass(frozen=True)
class CacheConfig:
    """Geometry and encoding of a cache (defaults: the paper's 288x144 input, stride-4 maps).

    ``input_size`` and ``stride`` are the :class:`~vireid.data.geometry.Geometry` the cache is
    built at (:attr:`geometry`, recorded in ``cache.json``). The fields are the keys of
    ``vireid-prep heatmaps --config FILE`` and its ``KEY=VALUE`` arguments, and the defaults
    of its options (``--input-size``, ``--stride``, ``--sigma``, ``--image-format``,
    ``--shard-size``)."""

    input_size: Tuple[int, int] = PAPER.input_size   # (H, W) of the stored crop = training input
    stride: int = PAPER.stride                       # heatmap stride: 72x36 maps for 288x144
    sigma: float = 7.0                         # Gaussian sigma in input pixels (GCCPM: 7 at 256x256)
    image_format: str = "raw"                  # "raw" (fast reads, 162 KiB/image) | "jpeg" (15 KiB/image)
    jpeg_quality: int = 95
    shard_size: int = 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", self.geometry.input_size)   # ValueError: not a multiple
        if not self.sigma >= 0.5:
            raise ValueError(f"sigma must be >= 0.5 input pixels, not {self.sigma}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be 'jpeg' or 'raw', not {self.image_format!r}")
        if not 0 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 0..100, not {self.jpeg_quality}")
        if self.shard_size < 1:
            raise ValueError("shard_size must be positive")

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.input_size, self.stride)

    @property
    def codec(self) -> HeatmapCodec:
        """The codec that renders this cache's maps."""
        return self.geometry.codec(self.sigma)

    @property
    def heatmap_size(self) -> Tuple[int, int]:
        return self.geometry.heatmap_size


def cache_attributes(config: CacheConfig, estimator: Mapping[str, Any], manifest_hash: str,
                     dataset: str, num_records: int) -> Dict[str, Any]:
    """Everything that made a cache: two caches with equal attributes hold equal data."""
    return {
        "format": CACHE_FORMAT,
        "dataset": dataset,
        "manifest_hash": manifest_hash,
        "num_records": int(num_records),
        "estimator": dict(estimator),
        "joint_names": list(JOINT_NAMES),
        "flip_pairs": [list(p) for p in FLIP_PAIRS],
        **config.geometry.to_attrs(),             # input_size, heatmap_size, stride
        "sigma": config.sigma,
        "image_format": config.image_format,
        "jpeg_quality": config.jpeg_quality if config.image_format == "jpeg" else None,
        "shard_size": config.shard_size,
        "heatmap_dtype": "uint8",
        "heatmap_scale": HEATMAP_SCALE,
        "image_channel_order": "BGR",
        "resize_filter": RESIZE_FILTER,
        "code_version": __version__,
    }


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.h5"


def quantize_heatmaps(maps: np.ndarray) -> np.ndarray:
    """float maps in [0, 1] -> uint8 (round to nearest); raises on NaN or out-of-range values."""
    if not np.isfinite(maps).all():
        raise ValueError("heatmaps contain NaN or inf")
    if maps.min() < -1e-6 or maps.max() > 1 + 1e-6:
        raise ValueError(f"heatmaps outside [0, 1]: min {maps.min():.4g}, max {maps.max():.4g}")
    return np.rint(np.clip(maps, 0.0, 1.0) * HEATMAP_SCALE).astype(np.uint8)


def dequantize_heatmaps(maps: np.ndarray) -> np.ndarray:
    return maps.astype(np.float32) / np.float32(HEATMAP_SCALE)


def encode_image(image_bgr: np.ndarray, config: CacheConfig) -> np.ndarray:
    """The stored form of one crop already resized to ``config.input_size``."""
    if image_bgr.shape[:2] != tuple(config.input_size):
        raise ValueError(f"image of shape {image_bgr.shape[:2]} is not the cache input size {config.input_size}")
    if config.image_format == "raw":
        return np.ascontiguousarray(image_bgr, dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.reshape(-1)


def decode_image(stored: np.ndarray, image_format: str) -> np.ndarray:
    if image_format == "raw":
        return np.asarray(stored)
    image = cv2.imdecode(np.asarray(stored, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise CacheError("a stored JPEG image cannot be decoded")
    return image


def compare_attributes(actual: Mapping[str, Any], expected: Mapping[str, Any],
                       keys: Optional[Sequence[str]] = None) -> List[str]:
    """Differences as ``key: cache has A, expected B`` lines (empty when compatible)."""
    keys = list(keys) if keys is not None else sorted(set(actual) | set(expected))
    out = []
    for k in keys:
        a, e = actual.get(k), expected.get(k)
        if a != e:
            out.append(f"{k}: cache has {a!r}, expected {e!r}")
    return out


def resize_filter_of(attrs: Mapping[str, Any]) -> str:
    """The filter a cache's crops were resized with, from its ``cache.json`` attributes."""
    return str(attrs.get("resize_filter") or LEGACY_RESIZE_FILTER)


def resize_crop(image: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
    """A uint8 crop ((H, W), (H, W, 1) or (H, W, 3), any channel order) resized to ``hw`` = (H, W)
    with :data:`RESIZE_FILTER`; returned as given when it already has that size.

    Pillow's LANCZOS widens its kernel by the shrink factor, so a downscaled crop is
    anti-aliased (OpenCV's ``INTER_LINEAR`` samples 4 pixels whatever the factor and aliases
    fine texture), and it is the filter of the AGW / DDAG loaders and the paper's release.
    ``benchmarks/bench_resize.py`` measures OpenCV's filters against it (docs/cache.md, "The heatmap
    cache"). Each channel is filtered on its own, so BGR and RGB give the same result."""
    h, w = int(hw[0]), int(hw[1])
    if image.shape[:2] == (h, w):
        return image
    if image.dtype != np.uint8:
        raise ValueError(f"resize_crop takes uint8 images, got {image.dtype}")
    planes = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    out = np.array(Image.fromarray(np.ascontiguousarray(planes)).resize((w, h), Image.LANCZOS))
    return out[:, :, None] if image.ndim == 3 and out.ndim == 2 else out


def estimator_of(attrs: Mapping[str, Any]) -> Optional[str]:
    """The name of the estimator that made the cache of ``attrs`` (its ``cache.json``), or
    ``None`` when it does not record one."""
    record = attrs.get("estimator")
    name = record.get("estimator") if isinstance(record, Mapping) else None
    return name if isinstance(name, str) and name else None


def describe_estimator(attrs: Mapping[str, Any]) -> str:
    """What made the cache of ``attrs``, in words: the estimator and what identifies its
    weights (LIP: the file's sha256; blazepose: the mediapipe version and model sha256;
    keypoints: the exact keypoints' file), for messages."""
    name = estimator_of(attrs)
    if name is None:
        return "an unknown estimator (its cache.json records none: made before vireid recorded it)"
    record = attrs["estimator"]
    sha = str(record.get("weights_sha256") or "")[:12] or "unknown"
    if name == "lip":
        return f"the lip estimator (GCCPM weights {record.get('weights') or '?'}, sha256 {sha})"
    if name == "blazepose":
        return f"the blazepose estimator (mediapipe {record.get('mediapipe_version') or '?'}, model sha256 {sha})"
    if name == "keypoints":
        return f"exact keypoints (--estimator keypoints, {record.get('weights') or '?'}, sha256 {sha})"
    return f"the {name} estimator"
