"""What makes a run resumable: the seeds and RNG states, which checkpoint a resume reads
(falling back to ``last.prev.pt`` when ``last.pt`` is damaged), the check that a
checkpoint belongs to this run (same data, identities, model and settings, but for
:data:`RESUMABLE_KEYS`), and putting its state back (:func:`restore`): step 2 of
:mod:`vireid.engine.loop` for ``vireid-train``."""
from __future__ import annotations

import dataclasses
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from vireid.data.manifest import Manifest
from vireid.model.checkpoint import CheckpointError, load_checkpoint
from vireid.engine.config import TrainConfig
from vireid.engine.errors import TrainError
from vireid.engine.loop import changed_keys, flatten_config, read_with_fallback
from vireid.io import PathLike, previous_path
from vireid.model import ModelConfig

logger = logging.getLogger(__name__)

#: Settings that may differ between a checkpoint and the run resuming it.
RESUMABLE_KEYS = ("epochs", "device", "progress", "log_every", "val_every", "grad_every", "data.workers",
                  "data.val_batch_size", "model.pretrained", "model.pose_init", "model.pose_init_stage",
                  "speed.amp", "speed.channels_last", "speed.pin_memory", "speed.compile",
                  "speed.activation_checkpointing",
                  "ddp.backend", "ddp.sync_bn", "ddp.gather_hctri", "ddp.timeout_minutes",
                  # the record of the weight files: a resume keeps its checkpoint's
                  "weights.imagenet", "weights.imagenet_sha256", "weights.imagenet_url", "weights.pose_init",
                  "weights.pose_init_sha256")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def rng_state() -> Dict[str, Any]:
    """This process's RNG states (Python, NumPy, torch and, when CUDA is in use, its own
    device's CUDA generator), for ``last.pt``.

    Only the device this rank trains on is saved (``cuda`` a state tensor, ``cuda_device``
    its index): under torchrun every rank owns one GPU, and the host that resumes may have
    fewer GPUs than the one that saved.
    """
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()                    # the current device: this rank's
        state["cuda_device"] = int(torch.cuda.current_device())
    return state


def _set_cuda_rng_state(saved: Any, device: Optional[int]) -> None:
    """This rank's CUDA generator from a checkpoint: a state tensor (what :func:`rng_state`
    saves), or the list of every visible GPU's states that older checkpoints hold, of which
    the entry of this rank's device index is taken. Never an error: a missing entry or a host
    without CUDA leaves the generator as seeded, with a warning (only the order of random
    draws on the GPU differs from an uninterrupted run)."""
    if not torch.cuda.is_available():
        logger.warning("the checkpoint holds a CUDA RNG state (device %s) but this host has no CUDA: the CUDA "
                       "generator is not restored", device if device is not None else "list")
        return
    current = int(torch.cuda.current_device())
    if torch.is_tensor(saved):
        torch.cuda.set_rng_state(saved.cpu())
        return
    states = list(saved)
    if current < len(states):
        torch.cuda.set_rng_state(states[current].cpu() if torch.is_tensor(states[current]) else states[current])
        return
    logger.warning("the checkpoint holds CUDA RNG states of %d device(s), none for this rank's device cuda:%d: "
                   "the CUDA generator is not restored", len(states), current)


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (see :func:`_set_cuda_rng_state` for the CUDA part)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu() if torch.is_tensor(state["torch"]) else state["torch"])
    if state.get("cuda") is not None:
        _set_cuda_rng_state(state["cuda"], state.get("cuda_device"))


def resume_path(resume: Union[None, str, PathLike], out: Path) -> Optional[Path]:
    """The checkpoint ``--resume`` names (``auto``: ``RUN/last.pt`` if there is one), or None
    for a new run; a new run into a folder that holds one is refused."""
    last = out / "last.pt"
    if resume is None:
        if last.is_file() or previous_path(last).is_file():
            raise TrainError(f"{out} already holds a run (last.pt): continue it with --resume auto, or choose "
                             "another --out")
        return None
    if str(resume) == "auto":
        # last.prev.pt alone: a crash between keeping the previous checkpoint and renaming the new one
        return last if last.is_file() or previous_path(last).is_file() else None
    path = Path(resume)
    if not path.is_file() and not previous_path(path).is_file():
        raise CheckpointError(f"{path}: checkpoint not found (--resume)")
    return path


def load_for_resume(path: Path, out: Path) -> Tuple[Dict[str, Any], Path]:
    """The checkpoint to resume from and its path: ``path``, or when it is missing, truncated or
    damaged the previous one kept beside it (``last.prev.pt``), saying so. A damaged
    ``RUN/last.pt`` is set aside as ``RUN/last.damaged.pt`` so that it never becomes the
    previous checkpoint."""
    ck, used, damaged = read_with_fallback(path, lambda p: load_checkpoint(p, map_location="cpu"), CheckpointError)
    if damaged is not None:
        aside = out / "last.damaged.pt"
        if path.is_file() and path == out / "last.pt":
            os.replace(path, aside)
        logger.warning("%s; resuming from the previous checkpoint %s (epoch %s) instead%s", damaged, used,
                       ck.get("epoch"), f" (the damaged one is kept as {aside})"
                       if aside.is_file() and path == out / "last.pt" else "")
    return ck, used


def check_resumable(ck: Mapping[str, Any], path: Path, config: TrainConfig, manifest: Manifest,
                     label_map: Mapping[int, int], model_config: ModelConfig) -> None:
    """Raise :class:`TrainError` unless ``ck`` is a resumable checkpoint of this very run."""
    if ck.get("manifest_hash") != manifest.hash:
        raise TrainError(f"{path} was trained on manifest {str(ck.get('manifest_hash'))[:12]}, the cache holds "
                         f"{manifest.hash[:12]}: not the same data; start a new run")
    if {int(k): int(v) for k, v in dict(ck.get("label_map", {})).items()} != dict(label_map):
        raise TrainError(f"{path}: its training identities differ from this configuration's (data.splits, "
                         "data.holdout or the RegDB trial changed)")
    for key in ("optimizer", "scheduler", "rng", "sampler", "epoch", "config"):
        if key not in ck:
            raise TrainError(f"{path} has no {key!r}: not a resumable vireid-train checkpoint (best.pt?)")
    saved = flatten_config(ck["config"])
    now = flatten_config(config.to_dict())
    diffs = [f"{k}: {saved.get(k)!r} in the checkpoint, {now.get(k)!r} now"
             for k in changed_keys(saved, now, RESUMABLE_KEYS)]
    if diffs:
        raise TrainError(f"{path} was trained with other settings ({'; '.join(diffs[:6])}); a resume may change "
                         f"only {', '.join(k for k in RESUMABLE_KEYS if not k.startswith('weights.'))}")
    saved_model = {k: list(v) if isinstance(v, tuple) else v for k, v in ck["model_config"].items()}
    now_model = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(model_config).items()}
    if saved_model != now_model:
        raise TrainError(f"{path}: its model config differs from this run's")


@dataclass
class RunProgress:
    """Where a run stands at an epoch boundary (what ``last.pt`` records besides the state dicts)."""

    epochs_done: int = 0
    global_step: int = 0
    val_history: List[Dict[str, float]] = field(default_factory=list)
    best_map: float = -1.0


def restore(ck: Mapping[str, Any], path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: Any, scaler: Any, sampler: Any, rank: int = 0, world_size: int = 1) -> RunProgress:
    """Put a checkpoint's training state back (checked by :func:`check_resumable`): weights,
    optimizer, scheduler, AMP scaler, the sampler's state and this rank's RNG state (every
    rank's is saved; with another number of processes every rank takes rank 0's)."""
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    scheduler.load_state_dict(ck["scheduler"])
    if scaler.is_enabled() and ck.get("scaler"):
        scaler.load_state_dict(ck["scaler"])
    try:
        sampler.load_state_dict(ck["sampler"])
    except ValueError as exc:
        hint = (" (with ddp.batch: per_rank the global batch's num_ids grows with the number of processes: "
                "resume on as many as the run had)" if "num_ids:" in str(exc) else "")
        raise TrainError(f"{path}: {exc}{hint}") from None
    history = ck.get("history", {})
    done = RunProgress(int(ck["epoch"]), int(ck.get("global_step", 0)), list(history.get("val", [])),
                       float(history.get("best_mAP", -1.0)))
    ranks = ck.get("rng_ranks")
    set_rng_state(ranks[rank] if ranks and len(ranks) == world_size else ck["rng"])
    logger.info("resumed from %s: %d epoch(s) done, global step %d", path, done.epochs_done, done.global_step)
    return done
