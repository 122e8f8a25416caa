"""``FeatureExtractor``: a trained checkpoint on your own images.

    from vireid import FeatureExtractor
    extract = FeatureExtractor("runs/sysu/best.pt", feature="f_all", flip=True)
    ir = extract(["q/0001.jpg", "q/0002.jpg"], modality="ir")      # (2, D) float32, unit rows
    rgb = extract(manifest.select(split="test", modality="rgb"), root="/data/SYSU-MM01")
    scores = ir @ rgb.T                                               # cosine similarities

Images go through exactly what the heatmap cache and ``vireid-eval`` do to a crop: read
as BGR (``cv2.IMREAD_COLOR``: a grey IR file becomes three equal channels), resized to
the checkpoint's input size (bilinear), BGR -> RGB, ImageNet normalisation
(:func:`vireid.inputs.transforms.normalise`); the network runs in eval mode, batched, each
image through its modality's stem; with ``flip`` the features of the image and its
mirror image are averaged (:func:`vireid.evaluation.features.forward_features`). Every
returned row is L2-normalised, so inner products are cosine similarities.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import numpy as np
import torch

from vireid.data.manifest import Manifest, Record
from vireid.io import PathLike
from vireid.model.modality_specific import IR, RGB

log = logging.getLogger(__name__)

FEATURES = ("f_id", "f_all")
MODALITY_NAMES = {"rgb": RGB, "ir": IR, "visible": RGB, "thermal": IR}
#: An image whose channels differ by less than this (mean absolute difference, grey
#: levels) counts as infrared when the modality is left to ``auto``.
GREY_TOLERANCE = 1.0

ImageLike = Union[str, Path, np.ndarray, Record]


class ExtractorError(ValueError):
    """Bad input to the extractor: an unreadable image, an unknown modality or feature type."""


@dataclass(frozen=True)
class ImageItem:
    """One image to extract: where it comes from (for messages and feature files) and, when
    known, its modality (0 RGB, 1 IR; None = decide from the pixels), identity and camera."""

    source: Union[str, np.ndarray]
    modality: Optional[int] = None
    pid: int = -1
    camid: int = -1

    @property
    def name(self) -> str:
        return self.source if isinstance(self.source, str) else "<array>"


def modality_code(value: Any) -> Optional[int]:
    """'rgb' / 'visible' / 0 -> 0, 'ir' / 'thermal' / 1 -> 1, None / 'auto' -> None."""
    if value is None or (isinstance(value, str) and value.lower() == "auto"):
        return None
    if isinstance(value, str) and value.lower() in MODALITY_NAMES:
        return MODALITY_NAMES[value.lower()]
    if isinstance(value, (int, np.integer)) and int(value) in (RGB, IR):
        return int(value)
    raise ExtractorError(f"unknown modality {value!r}: use 'rgb', 'ir', 0, 1 or 'auto'")


def is_grey(image_bgr: np.ndarray) -> bool:
    """True when the three channels are (nearly) equal: an infrared crop stored in colour."""
    img = image_bgr.astype(np.int16)
    diff = np.abs(img[..., 0] - img[..., 1]).mean() + np.abs(img[..., 1] - img[..., 2]).mean()
    return bool(diff < GREY_TOLERANCE)


def as_items(inputs: Any, modality: Any = None, root: Optional[PathLike] = None) -> List[ImageItem]:
    """Normalise the extractor's inputs to :class:`ImageItem` s.

    ``inputs``: a path, an array, a :class:`Record`, a :class:`Manifest` (all its records) or a
    sequence of those. ``modality``: one value for all, one per image, or None (records give
    their own; other images are decided by :func:`is_grey`). Records' paths are taken under
    ``root`` (default: the manifest's root).
    """
    if isinstance(inputs, Manifest):
        root = root if root is not None else inputs.root
        inputs = inputs.records
    elif isinstance(inputs, (str, Path, np.ndarray, Record)):
        inputs = [inputs]
    inputs = list(inputs)
    if modality is None or isinstance(modality, (str, int, np.integer)):
        per_image = [modality] * len(inputs)
    else:
        per_image = list(modality)
        if len(per_image) != len(inputs):
            raise ExtractorError(f"{len(per_image)} modalities given for {len(inputs)} images")
    items = []
    for obj, mod in zip(inputs, per_image):
        code = modality_code(mod)
        if isinstance(obj, Record):
            if root is None:
                raise ExtractorError(f"{obj.path}: a manifest record needs root= (the dataset folder)")
            own = code if code is not None else MODALITY_NAMES[obj.modality]
            items.append(ImageItem(str(Path(root) / obj.path), own, obj.pid, obj.camid))
        elif isinstance(obj, (str, Path)):
            items.append(ImageItem(str(obj), code))
        elif isinstance(obj, np.ndarray):
            items.append(ImageItem(obj, code))
        else:
            raise ExtractorError(f"cannot extract features of a {type(obj).__name__}: give paths, arrays or a manifest")
    return items


def load_bgr(item: ImageItem) -> np.ndarray:
    """(H, W, 3) uint8 BGR of an item (a grey array or file as three equal channels)."""
    from vireid.data.images import load_image
    from vireid.inputs.transforms import as_three_channels

    if isinstance(item.source, np.ndarray):
        image = item.source
        if image.dtype != np.uint8:
            raise ExtractorError(f"image arrays must be uint8 (BGR or grey), got {image.dtype}")
        try:
            return np.ascontiguousarray(as_three_channels(image))
        except ValueError as exc:
            raise ExtractorError(str(exc)) from None
    loaded = load_image(Path(item.source))
    if isinstance(loaded, str):
        raise ExtractorError(f"{item.source}: {loaded}")
    return loaded[0]


class FeatureExtractor:
    """L2-normalised test features of a ``vireid-train`` checkpoint for any images.

    Args:
        checkpoint: a ``vireid-train`` checkpoint (``RUN/best.pt``, ``RUN/last.pt``).
        device: 'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when available).
        feature: 'f_all' (default: ReID and pose branches, eq. 13) or 'f_id' (ReID branch, eq. 12).
        flip: average each image's features with its mirror image's.
        batch_size: images per forward pass.

    Call it on a path, an array (BGR, or grey for IR), a manifest, records, or a list of
    those, with ``modality`` ('rgb' | 'ir' | 'auto', or one per image): ``(N, D)`` float32.
    """

    def __init__(self, checkpoint: PathLike, device: str = "auto", feature: str = "f_all", flip: bool = True,
                 batch_size: int = 64) -> None:
        from vireid.cache.geometry import Geometry
        from vireid.inputs.transforms import TransformConfig
        from vireid.model.checkpoint import build_model_from_checkpoint

        if feature not in FEATURES:
            raise ExtractorError(f"feature must be one of {FEATURES}, got {feature!r}")
        if batch_size < 1:
            raise ExtractorError(f"batch_size must be >= 1, got {batch_size}")
        self.checkpoint = Path(checkpoint)
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                   "cpu" if device == "auto" else device)
        self.model, self.checkpoint_data = build_model_from_checkpoint(self.checkpoint)
        self.model.eval().to(self.device)
        self.feature = feature
        self.flip = bool(flip)
        self.batch_size = int(batch_size)
        self.input_size = tuple(int(v) for v in self.model.config.input_size)
        # resize and normalise only: the heatmap stride plays no part
        self.transform_config = TransformConfig(Geometry(self.input_size))
        self._sha256: Optional[str] = None

    @property
    def dim(self) -> int:
        """Length of the returned features."""
        return int(self.model.feature_dim[self.feature])

    @property
    def checkpoint_sha256(self) -> str:
        if self._sha256 is None:
            from vireid.io import file_sha256

            self._sha256 = file_sha256(self.checkpoint)
        return self._sha256

    def describe(self) -> dict:
        """What a feature file records about the features' origin."""
        return {"checkpoint": str(self.checkpoint.resolve()), "checkpoint_sha256": self.checkpoint_sha256,
                "feature": self.feature, "flip": self.flip, "dim": self.dim, "input_size": list(self.input_size)}

    def prepare(self, item: ImageItem) -> tuple:
        """``(normalised (3, H, W) float32, modality code)`` of one item."""
        from vireid.inputs.transforms import normalise, resize_image

        image = load_bgr(item)
        mod = item.modality if item.modality is not None else (IR if is_grey(image) else RGB)
        return normalise(resize_image(image, self.transform_config), self.transform_config), mod

    def __call__(self, inputs: Any, modality: Any = None, root: Optional[PathLike] = None) -> np.ndarray:
        return self.extract_items(as_items(inputs, modality, root))

    def extract_items(self, items: Sequence[ImageItem], return_modality: bool = False) -> Any:
        """``(len(items), dim)`` float32, unit rows, in ``items`` order; with ``return_modality``
        also the ``(len(items),)`` int8 modality each image was run with."""
        from vireid.evaluation.features import forward_features

        out = np.empty((len(items), self.dim), np.float32)
        used = np.empty(len(items), np.int8)
        for start in range(0, len(items), self.batch_size):
            batch = [self.prepare(it) for it in items[start:start + self.batch_size]]
            images = torch.from_numpy(np.stack([b[0] for b in batch])).to(self.device)
            modality = torch.tensor([b[1] for b in batch], dtype=torch.long, device=self.device)
            feats = forward_features(self.model, images, modality, self.flip)[self.feature].float()
            feats = torch.nn.functional.normalize(feats, dim=1)
            out[start:start + len(batch)] = feats.cpu().numpy()
            used[start:start + len(batch)] = [b[1] for b in batch]
        return (out, used) if return_modality else out
