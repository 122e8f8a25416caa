"""Step 1 of ``vireid-train`` (:mod:`vireid.engine.loop`): the data of a run from a heatmap cache.

:func:`split_training_data` picks the training and held-out rows (``data.splits``,
``data.holdout``, the RegDB trial; ``data.damaged_rows: skip`` leaves out rows that fail
their checksums) and numbers the training identities; :func:`build_loader` gives the
cross-modality sampler and its loader over them, and the held-out validation split. Each
problem is a :class:`~vireid.engine.errors.TrainError` naming the cache or key.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader

from vireid.inputs.dataset import CacheDataset, make_label_map, training_indices
from vireid.data.manifest import Manifest
from vireid.inputs.sampler import CrossModalitySampler, SamplerConfig, SamplerError
from vireid.cache.reader import HeatmapCache
from vireid.inputs.transforms import TransformConfig, TrainTransform
from vireid.engine import distributed as ddp
from vireid.engine.config import TrainConfig
from vireid.engine.errors import TrainError
from vireid.engine.validation import validation_split

logger = logging.getLogger(__name__)


@dataclass
class DataSplit:
    """The rows a run trains and validates on."""

    train_idx: List[int]
    val_idx: List[int]
    label_map: Dict[int, int]                     # raw identity -> training label
    damaged: List[Tuple[int, str]]                # rows left out (data.damaged_rows: skip) and why
    meta: Dict[str, np.ndarray]                   # the cache's metadata, gathered once per run


@dataclass
class TrainData:
    """The loader of a run and its validation split (IR queries, RGB gallery; empty without a hold-out)."""

    dataset: CacheDataset
    sampler: CrossModalitySampler
    loader: DataLoader
    transform: TransformConfig                    # normalisation and erasing run on the device per batch
    val_query: List[int]
    val_gallery: List[int]
    meta: Dict[str, np.ndarray]                   # the cache's metadata (DataSplit.meta)


def split_training_data(cfg: TrainConfig, cache: HeatmapCache, manifest: Manifest, cache_dir: Path,
                        rank: int = 0, world_size: int = 1) -> DataSplit:
    """The training and held-out rows of ``cache`` and the training identities' labels (the
    same on every rank; with ``data.damaged_rows: skip`` each of ``world_size`` ranks reads a
    share of the rows and the ranks pool what they found)."""
    try:
        train_idx, val_idx = training_indices(cache, manifest, cfg.data.splits, trial=cfg.data.trial,
                                              holdout=cfg.data.holdout, holdout_fraction=cfg.data.holdout_fraction,
                                              seed=cfg.seed)
    except SamplerError as exc:
        raise TrainError(f"{cache_dir}: {exc}") from None
    except ValueError as exc:
        raise TrainError(f"{cache_dir}: {exc}") from None
    damaged: List[Tuple[int, str]] = []
    if cfg.data.damaged_rows == "skip":
        train_idx, val_idx, damaged = _without_damaged(cache, train_idx, val_idx, rank, world_size)
    meta = cache.metadata()                       # the run's one gathering: DataSplit.meta
    label_map = make_label_map(meta["pid"][np.asarray(train_idx)].tolist())
    return DataSplit(train_idx, val_idx, label_map, damaged, meta)


def global_sampler_config(cfg: TrainConfig, world_size: int) -> SamplerConfig:
    """The global batch of ``world_size`` processes (``ddp.batch``): ``global``, the configured
    D x K, split between the processes (refused unless ``world_size`` divides D x K);
    ``per_rank``, D identities per process, so ``world_size`` x D in all."""
    scfg = cfg.data.sampler_config()
    d, k = scfg.num_ids, scfg.num_per_modality
    if cfg.ddp.batch == "per_rank":
        return dataclasses.replace(scfg, num_ids=d * world_size)
    if (d * k) % world_size:
        raise TrainError(f"data.num_ids={d} x data.num_per_modality={k} images per modality in the global batch "
                         f"(ddp.batch: global) cannot be split evenly between {world_size} processes: use a world "
                         f"size that divides {d * k}, or --set ddp.batch=per_rank for data.num_ids identities per "
                         f"process ({d * world_size} in all; scale optim.lr)")
    return scfg


def batch_summary(cfg: TrainConfig, world_size: int) -> str:
    """One line: the global batch, each process's share and the lr in force (logged at start,
    written at the top of ``config.yaml``)."""
    scfg = global_sampler_config(cfg, world_size)
    d, k = scfg.num_ids, scfg.num_per_modality
    line = f"global batch {d} identities x ({k} RGB + {k} IR) = {scfg.batch_size} images"
    if world_size > 1:
        line += (f", {scfg.batch_size // world_size} per process on {world_size} processes "
                 f"(ddp.batch: {cfg.ddp.batch})")
    return line + f"; optim.lr {cfg.optim.lr:g} in force"


def heatmap_mode(use_pose_loss: bool, device: torch.device, erase_targets: str = "none") -> str:
    """What the loader gives of the target heatmaps (``TrainTransform(heatmaps=...)``): none when
    no loss uses them (pose loss off); on an accelerator the uint8 maps as stored, shifted on
    the device (:func:`~vireid.inputs.transforms.shift_heatmaps`: a quarter of the float32 bytes
    to copy); on a CPU, or when the targets are erased with the image (``erase_targets``, the
    release's erasing, which needs the shifted maps), shifted in the loader's workers (float32)."""
    if not use_pose_loss:
        return "none"
    return "float" if device.type == "cpu" or erase_targets != "none" else "stored"


def build_loader(cfg: TrainConfig, cache: HeatmapCache, cache_dir: Path, split: DataSplit, rank: int,
                 world_size: int, pin_memory: bool, heatmaps: str = "float") -> TrainData:
    """The training loader (this rank's share of every global batch) and the validation split;
    ``heatmaps`` as :func:`heatmap_mode` says."""
    # workers do the geometry on uint8; normalisation and erasing run on the device per batch;
    # the cache's geometry is checked against it once, at start-up (trainer.check_cache)
    transform_cfg = cfg.data.transform_config()
    dataset = CacheDataset(cache, split.train_idx,
                           TrainTransform(transform_cfg, device_normalise=True, heatmaps=heatmaps),
                           seed=cfg.seed, label_map=split.label_map, meta=split.meta)
    sampler_cfg = global_sampler_config(cfg, world_size)
    try:
        sampler = CrossModalitySampler(dataset.pids, dataset.modalities, sampler_cfg, seed=cfg.seed,
                                       rank=rank, world_size=world_size, keyed=True)
    except SamplerError as exc:
        per_rank = (f", x {world_size} processes = {sampler_cfg.num_ids} (ddp.batch: per_rank)"
                    if cfg.ddp.batch == "per_rank" and world_size > 1 else "")
        raise TrainError(f"{cache_dir}: {exc} (data.num_ids={cfg.data.num_ids}{per_rank})") from None
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.data.workers, pin_memory=pin_memory,
                        persistent_workers=cfg.data.workers > 0)
    val_query: List[int] = []
    val_gallery: List[int] = []
    if cfg.data.holdout is not None:
        val_query, val_gallery = validation_split(cache, split.val_idx, split.meta)
        if not val_query or not val_gallery:
            raise TrainError(f"{cache_dir}: the held-out identities (data.holdout={cfg.data.holdout}) have no "
                             "identity with both RGB and IR images: nothing to validate on")
    return TrainData(dataset, sampler, loader, transform_cfg, val_query, val_gallery, split.meta)


def _without_damaged(cache: HeatmapCache, train_idx: Sequence[int], val_idx: Sequence[int], rank: int = 0,
                     world_size: int = 1) -> Tuple[List[int], List[int], List[Tuple[int, str]]]:
    """``data.damaged_rows: skip``: read every training and held-out row once and leave out
    those that fail their checksums, saying which. Under DDP rank ``r`` reads rows ``r``,
    ``r + world_size``, ... and the ranks gather their findings: every row is read once in
    all, not once per rank."""
    rows = sorted(set(train_idx) | set(val_idx))
    if world_size > 1 and ddp.active():
        found = ddp.all_gather_object(cache.damaged_rows(rows[rank::world_size]))
        damaged = sorted((i, message) for part in found for i, message in part)
    else:
        damaged = cache.damaged_rows(rows)
    bad = {i for i, _ in damaged}
    for _, message in damaged:
        logger.warning("left out (data.damaged_rows=skip): %s", message)
    if damaged:
        logger.warning("%d damaged row(s) left out of %d", len(damaged), len(rows))
    return [i for i in train_idx if i not in bad], [i for i in val_idx if i not in bad], damaged
