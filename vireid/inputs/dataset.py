"""Training dataset over the heatmap cache, and the choice of training / held-out indices.

:class:`CacheDataset` serves entries of a :class:`~vireid.cache.reader.HeatmapCache` as
dicts of tensors (see :meth:`CacheDataset.__getitem__`), augmented by a transform with a
per-item ``numpy`` generator seeded from ``(seed, epoch, cache index, draw)``, so every
item's augmentation is reproducible and independent of ``num_workers``, worker
scheduling and of what else was loaded. Items may be requested by dataset position
(``dataset[i]``, draw 0 of the epoch set by :meth:`CacheDataset.set_epoch`) or by the
``(position, epoch, draw)`` keys of :class:`~vireid.inputs.sampler.CrossModalitySampler`
with ``keyed=True`` (an image drawn twice in one epoch is then augmented differently).

:func:`training_indices` picks the cache entries of the training identities:

* SYSU-MM01: records whose ``split`` is in ``splits`` (default train + val: the 395
  identities the literature trains on); ``holdout='val'`` keeps the ``val`` identities
  apart for validation instead;
* RegDB: the images listed in trial ``t``'s ``train:visible`` / ``train:thermal`` tables
  of the manifest (``manifest.splits['trial:t']``); ``splits`` does not apply (a dataset
  whose reader lists its own training images: ``DatasetReader.training_paths``);
* LLCM: the records of the ``train`` split (its training lists);
* either: ``holdout='fraction'`` moves a seeded ``holdout_fraction`` of the training
  identities to validation.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from torch.utils.data import Dataset

from vireid.data.manifest import Manifest
from vireid.inputs.sampler import check_both_modalities
from vireid.cache.reader import MODALITY_CODES, CacheError, HeatmapCache
from vireid.inputs.transforms import EvalTransform, TransformConfig
from vireid.io import PathLike

logger = logging.getLogger(__name__)

Item = Union[int, Tuple[int, int, int]]
HOLDOUTS = (None, "val", "fraction")


def unwrap_worker_error(exc: CacheError) -> CacheError:
    """A :class:`CacheError` raised in a DataLoader worker reaches the main process re-raised
    with the worker's whole traceback in its message; this returns the same error with the
    original one-line message (an error from the main process is returned as it is)."""
    text = str(exc)
    if "Original Traceback" not in text:
        return exc
    last = [ln for ln in text.strip().splitlines() if ln.strip()][-1].strip()
    name = f"{type(exc).__module__}.{type(exc).__qualname__}: "
    return type(exc)(last[len(name):] if last.startswith(name) else last)


def make_label_map(pids: Sequence[int]) -> Dict[int, int]:
    """Contiguous training labels: sorted distinct identities -> 0..C-1."""
    return {int(p): i for i, p in enumerate(sorted({int(p) for p in pids}))}


def eval_transform(cache: HeatmapCache) -> EvalTransform:
    """The deterministic transform at the cache's own geometry (test features, validation,
    pictures)."""
    return EvalTransform(TransformConfig(cache.geometry))


class CacheDataset(Dataset):
    """Entries ``indices`` of a heatmap cache as training samples.

    Args:
        cache: a :class:`HeatmapCache` or its folder.
        indices: cache entries to serve (default: all), e.g. from :func:`training_indices`.
        transform: ``transform(sample, rng)`` (:class:`~vireid.inputs.transforms.TrainTransform`
            or ``EvalTransform``); default: an ``EvalTransform`` at the cache's own size.
            A transform with a ``config`` must have the cache's geometry: the caller checks it
            once (:meth:`~vireid.cache.geometry.Geometry.check`; ``vireid-train`` at start-up,
            :func:`vireid.engine.trainer.check_cache`).
        seed: base seed of the per-item augmentation.
        label_map: identity -> training label; default :func:`make_label_map` of these indices.
        meta: the cache's :meth:`~vireid.cache.reader.HeatmapCache.metadata` when the caller has
            gathered it already (gathered here otherwise).
    """

    def __init__(self, cache: Union[HeatmapCache, PathLike], indices: Optional[Sequence[int]] = None,
                 transform: Any = None, seed: int = 0, label_map: Optional[Mapping[int, int]] = None,
                 meta: Optional[Mapping[str, np.ndarray]] = None):
        self.cache = cache if isinstance(cache, HeatmapCache) else HeatmapCache(Path(cache))
        n = len(self.cache)
        self.indices = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.indices.ndim != 1:
            raise ValueError(f"indices must be one-dimensional, got shape {self.indices.shape}")
        bad = self.indices[(self.indices < 0) | (self.indices >= n)]
        if bad.size:
            raise IndexError(f"indices {bad[:10].tolist()} are outside the cache's {n} entries")
        if transform is None:
            transform = eval_transform(self.cache)
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        meta = self.cache.metadata() if meta is None else meta
        self.cache.check_metadata(self.indices)             # DamagedRowError names a damaged row
        self.pids = meta["pid"][self.indices]               # (N,) per dataset position
        self.camids = meta["camid"][self.indices]
        self.modalities = meta["modality"][self.indices]    # 0 RGB, 1 IR
        self.confidence = meta["confidence"][self.indices]  # (N, 16)
        self.label_map = dict(label_map) if label_map is not None else make_label_map(self.pids.tolist())
        unknown = sorted(set(self.pids.tolist()) - set(self.label_map))
        if unknown:
            raise ValueError(f"label_map has no label for identities {unknown[:20]}")
        self.labels = np.asarray([self.label_map[int(p)] for p in self.pids], dtype=np.int64)

    @property
    def num_classes(self) -> int:
        return len(self.label_map)

    def __len__(self) -> int:
        return int(self.indices.size)

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for items requested by plain position (keyed items carry their own)."""
        self.epoch = int(epoch)

    def rng_for(self, position: int, epoch: int, draw: int = 0) -> np.random.Generator:
        """The augmentation generator of one draw of one item."""
        return np.random.default_rng([self.seed, int(epoch), int(self.indices[position]), int(draw)])

    def __getitem__(self, item: Item) -> Dict[str, Any]:
        """``item`` = position or ``(position, epoch, draw)`` -> dict with ``image`` (3, H, W) float32,
        ``heatmaps`` (16, Hm, Wm) float32, ``joint_weights`` (16,) float32 (or what the transform
        gives instead: see :class:`~vireid.inputs.transforms.TrainTransform`), ``pid`` (raw identity),
        ``label`` (0..C-1), ``camid``, ``modality`` (0 RGB / 1 IR), ``index`` (position), ``cache_index``."""
        if isinstance(item, (tuple, list)):
            position, epoch, draw = (int(v) for v in item)
        else:
            position, epoch, draw = int(item), self.epoch, 0
        if not 0 <= position < len(self):
            raise IndexError(f"position {position} outside the dataset's {len(self)} items")
        cache_index = int(self.indices[position])
        # uint8 heatmaps as stored: the transform folds their 1/255 into its first float op
        image, heatmaps = self.cache.read_arrays(cache_index, quantized=True)
        sample = {"image": image, "heatmaps": heatmaps, "confidence": self.confidence[position]}
        out = dict(self.transform(sample, self.rng_for(position, epoch, draw)))
        out.update(pid=int(self.pids[position]), label=int(self.labels[position]), camid=int(self.camids[position]),
                   modality=int(self.modalities[position]), index=position, cache_index=cache_index)
        return out


# ---------------------------------------------------------------------------- index selection
def _check_manifest(cache: HeatmapCache, manifest: Manifest) -> None:
    have = cache.attrs.get("manifest_hash")
    if have is not None and have != manifest.hash:
        raise CacheError(f"{cache.root}: cache was built from manifest {str(have)[:12]}, not from the given "
                         f"{manifest.dataset} manifest {manifest.hash[:12]}: rebuild the cache or load its manifest")


def _paths_to_indices(cache: HeatmapCache, paths: Sequence[str]) -> List[int]:
    out, missing = [], []
    for p in paths:
        try:
            out.append(cache.index_of(p))
        except CacheError:
            missing.append(p)
    if missing:
        logger.warning("%d training image(s) are not in the cache %s (skipped when it was built?), e.g. %s",
                       len(missing), cache.root, missing[:3])
    return out


def training_indices(cache: Union[HeatmapCache, PathLike], manifest: Manifest,
                     splits: Sequence[str] = ("train", "val"), *, trial: int = 1,
                     holdout: Optional[str] = None, holdout_fraction: float = 0.1,
                     seed: int = 0) -> Tuple[List[int], List[int]]:
    """Cache indices ``(train, val)`` of the training images (see the module docstring).

    ``val`` is empty unless ``holdout`` is ``'val'`` (SYSU: the ``val`` split's identities)
    or ``'fraction'`` (``round(holdout_fraction * identities)``, at least 1, chosen with
    ``seed``). Raises :class:`~vireid.inputs.sampler.SamplerError` naming any training
    identity that has no image in one modality.
    """
    cache = cache if isinstance(cache, HeatmapCache) else HeatmapCache(Path(cache))
    if holdout not in HOLDOUTS:
        raise ValueError(f"holdout must be one of {HOLDOUTS}, got {holdout!r}")
    _check_manifest(cache, manifest)
    by_path = manifest.by_path()
    from vireid.data import registry

    reader = registry.get(manifest.dataset)
    listed = reader.training_paths(manifest, splits, trial)
    if listed is not None:                                   # the reader's own lists (RegDB: the trial's)
        if holdout == "val":
            raise ValueError(f"{reader.spec().full_name} has no 'val' split: use holdout='fraction' to hold out "
                             "training identities")
        paths = list(listed)
    else:
        wanted = set(splits)
        if holdout == "val":
            if "val" not in wanted:
                raise ValueError(f"holdout='val' needs 'val' among the splits {tuple(splits)}")
        known = {r.split for r in manifest.records}
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(f"splits {unknown} do not occur in the {manifest.dataset} manifest (has {sorted(known)})")
        paths = [r.path for r in manifest.records if r.split in wanted]
    if holdout == "val":
        val_paths = [p for p in paths if by_path[p].split == "val"]
        paths = [p for p in paths if by_path[p].split != "val"]
    elif holdout == "fraction":
        if not 0.0 < holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
        ids = sorted({by_path[p].pid for p in paths})
        n_val = max(1, int(round(holdout_fraction * len(ids))))
        if n_val >= len(ids):
            raise ValueError(f"holding out {n_val} of {len(ids)} identities leaves none to train on")
        val_ids = set(np.random.default_rng(seed).choice(ids, size=n_val, replace=False).tolist())
        val_paths = [p for p in paths if by_path[p].pid in val_ids]
        paths = [p for p in paths if by_path[p].pid not in val_ids]
    else:
        val_paths = []
    train = _paths_to_indices(cache, paths)
    val = _paths_to_indices(cache, val_paths)
    if not train:
        raise ValueError(f"no training images selected from the {manifest.dataset} manifest (splits {tuple(splits)})")
    records = [by_path[cache.paths[i]] for i in train]
    check_both_modalities([r.pid for r in records], [MODALITY_CODES[r.modality] for r in records])
    logger.info("%s: %d training images of %d identities, %d held-out images", manifest.dataset, len(train),
                len({r.pid for r in records}), len(val))
    return train, val
