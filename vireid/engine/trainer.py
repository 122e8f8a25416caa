"""Joint training of the pose / ReID network (paper Section III-E, IV-A) from a heatmap cache.

:func:`train` reads only the cache (its shards, ``cache.json`` and ``manifest.json``),
never the pose estimator, and writes into the run folder ``RUN``::

    RUN/config.yaml     the resolved configuration, with the weight files used and their sha256 (``weights:``)
    RUN/log.jsonl       every named loss and the lr per step, epoch means, validation
    RUN/last.pt         after every epoch: weights + all training state (exact resume)
    RUN/best.pt         best validation mAP (only with a hold-out: data.holdout)
    RUN/losses.png      loss curves; RUN/val.png validation mAP / R1 (with a hold-out)

The run follows the skeleton of :mod:`vireid.engine.loop` (shared with ``vireid-prep
train-estimator``): 1. data (:mod:`vireid.engine.train_data`), 2. model, optimizer and resume
(:mod:`vireid.engine.run_state`), 3. and 4. :class:`vireid.engine.joint_loop.JointLoop`
(``train_step``: eq. 21's named losses; ``end_of_epoch``: validation, checkpoint).

Start-up checks, each a clear error naming the file or key: the cache's dataset, input
size and stride against the configuration, the estimator that made it against
``data.require_estimator`` (the paper presets: ``lip``), its heatmap size against the model's
prediction (when the pose loss is on), missing shards, identities without images in
one modality, fewer identities than a batch needs, a resume checkpoint of another run.

Selection: without a hold-out the last epoch is kept (the paper's protocol). With one,
validation (:mod:`vireid.engine.validation`: query IR vs gallery RGB images of the held-out
identities, all of them, ranked by the f_all / f_id features with the RegDB-style metrics of
:mod:`vireid.evaluation`) runs every ``val_every`` epochs and picks ``best.pt`` by mAP.
The test split is never trained on or selected with.

Exact resume: ``last.pt`` holds the model, optimizer (momentum buffers), scheduler,
AMP scaler, the torch / numpy / python RNG states and the sampler's state; the data
order and augmentation are pure functions of (seed, epoch, draw), so continuing from
epoch ``e`` gives the same weights as an uninterrupted run (tested on CPU).

Non-finite guard: a NaN or inf in any named loss stops the run before the update, with
the loss's name and the step; ``last.pt`` keeps the last good epoch.

Damaged checkpoints: checkpoints are sealed (:mod:`vireid.sealing`) and the epoch before
``last.pt`` is kept as ``last.prev.pt``; a resume from a truncated or bit-flipped
``last.pt`` falls back to it and says so (:func:`vireid.engine.run_state.load_for_resume`).

Multi-process (``torchrun --nproc-per-node N``, see :mod:`vireid.engine.distributed`):
the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` (parameters the
configuration leaves without a gradient frozen first, :func:`vireid.engine.frozen.freeze_unused`,
so DDP needs no search for unused parameters); the sampler gives rank ``r`` its disjoint
``1 / N`` of every global batch (``ddp.batch: global``, the default: the configured D x K
batch is the global one, so the lr needs no scaling; ``per_rank``: D identities per rank);
with ``ddp.sync_bn``
and ``ddp.gather_hctri`` (defaults) BatchNorm and the hetero-center triplet loss see the
global batch (the ``gather`` of :func:`vireid.losses.compute_losses`), so N processes compute
the single-process gradients. The step's loss values are averaged over ranks before they are
logged and checked, so the non-finite guard stops every rank at the same step with the same
message. Only rank 0 writes the run folder (``config.yaml``, the log, checkpoints --
atomically --, plots) and validates; its validation result is broadcast, so every rank agrees on ``best.pt``. ``last.pt`` holds every
rank's RNG state; resume works under DDP as in one process (also with another number of
processes, then up to floating-point summation order). Multi-node runs need the cache
and the run folder on a filesystem shared by all nodes.

Speed switches (``speed:``, :func:`vireid.engine.speed.resolve_speed`): autocast in
bf16 / fp16 (fp16 with a GradScaler, saved in the checkpoint's ``scaler`` slot),
channels-last, pinned memory with non-blocking copies, optional :func:`torch.compile`.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

from vireid._version import __version__
from vireid.cache.format import describe_estimator, estimator_of, resize_filter_of
from vireid.inputs.dataset import unwrap_worker_error
from vireid.data.manifest import Manifest, ManifestError
from vireid.inputs.sampler import SamplerError
from vireid.cache.reader import CacheError, HeatmapCache
from vireid.engine import distributed as ddp
from vireid.model.checkpoint import CheckpointError
from vireid.engine.config import (ConfigError, TrainConfig, WeightsRecord, config_from_dict, resolve_required,
                                  save_config)
from vireid.engine.distributed import DistContext, DistributedError
from vireid.engine.errors import NonFiniteLossError, TrainError  # noqa: F401 - callers import them from here
from vireid.engine.frozen import freeze_unused
from vireid.engine.joint_loop import JointLoop
from vireid.engine.loop import DeviceError
from vireid.engine.optim import build_optimizer, build_scheduler
from vireid.engine.plots import plot_losses, plot_validation
from vireid.engine.run_state import RunProgress, check_resumable, load_for_resume, restore, resume_path, seed_everything
from vireid.engine.runlog import NullLog, RunLog, read_log, trim_log
from vireid.engine.speed import ResolvedSpeed, resolve_speed
from vireid.engine.steptimer import NULL_TIMER, StepTimer
from vireid.engine.train_data import batch_summary, build_loader, heatmap_mode, split_training_data
from vireid.io import PathLike, WriteError, ensure_writable
from vireid.model import ModelConfig, PoseVIReIDNet, load_imagenet_backbone, load_pose_branch_from_lip
from vireid.model.recompute import enable_activation_checkpointing

logger = logging.getLogger(__name__)

#: Everything a command line should report as one line rather than a traceback.
USER_ERRORS = (TrainError, ConfigError, CacheError, ManifestError, CheckpointError, SamplerError,
               DistributedError, WriteError, DeviceError)


@dataclass
class TrainResult:
    """What a run produced."""

    run_dir: Path
    last: Path
    best: Optional[Path]
    epochs_done: int
    global_step: int
    losses_png: Optional[Path] = None
    val_png: Optional[Path] = None
    val_history: List[Dict[str, float]] = field(default_factory=list)


# ----------------------------------------------------------------------------- set-up helpers
def check_cache(cache: HeatmapCache, manifest: Manifest, config: TrainConfig, model_config: ModelConfig) -> None:
    """Cache attributes against the configuration (raises :class:`TrainError`; a geometry that
    differs from ``data.input_size`` / ``data.stride``: ``CacheError`` of :meth:`Geometry.check`)."""
    root = cache.root
    attrs = cache.attrs
    if manifest.dataset != config.dataset:
        raise TrainError(f"{root} holds {manifest.dataset} data but the configuration says dataset: "
                         f"{config.dataset}; use the {manifest.dataset} preset or set dataset={manifest.dataset}")
    if attrs.get("dataset") not in (None, manifest.dataset):
        raise TrainError(f"{root}/cache.json says dataset {attrs.get('dataset')!r} but its manifest.json is "
                         f"{manifest.dataset!r}: the cache folder is inconsistent; rebuild it")
    geometry = cache.geometry                   # the one geometry check: CacheError naming cache.json
    geometry.check(config.data.transform_config().geometry, root / "cache.json")
    predicted = model_config.heatmap_size()
    if model_config.use_pose_loss and predicted != geometry.heatmap_size:
        raise TrainError(f"{root}/cache.json: heatmaps are {'x'.join(map(str, geometry.heatmap_size))} but the "
                         f"model predicts {predicted[0]}x{predicted[1]} at input "
                         f"{'x'.join(map(str, geometry.input_size))} (model.heatmap_size): rebuild the cache with "
                         "stride 4 or change the input size")


def check_cache_estimator(cache: HeatmapCache, config: TrainConfig) -> None:
    """The estimator that made the cache (``cache.json``) against ``data.require_estimator``:
    a paper preset trains only on the LIP estimator's heatmaps unless told otherwise."""
    want = config.data.require_estimator
    if want is not None and estimator_of(cache.attrs) != want:
        raise TrainError(f"{cache.root}/cache.json: made by {describe_estimator(cache.attrs)}, but this "
                         f"configuration trains on the {want} estimator's heatmaps (data.require_estimator: "
                         f"{want}); rebuild the cache with `vireid-prep heatmaps --estimator {want}` or accept "
                         f"it with `--set data.require_estimator=null`")


def _open_data(cache_dir: Path) -> Tuple[HeatmapCache, Manifest]:
    cache = HeatmapCache(cache_dir)                                   # CacheError: incomplete, missing shard
    manifest = Manifest.load(cache_dir / "manifest.json")            # ManifestError
    return cache, manifest


# ----------------------------------------------------------------------------- training
def train(config: TrainConfig, cache_dir: PathLike, out_dir: PathLike, trial: Optional[int] = None,
          resume: Union[None, str, PathLike] = None, timer: Optional[StepTimer] = None) -> TrainResult:
    """Train on ``cache_dir`` into ``out_dir`` (see the module docstring).

    Args:
        config: the resolved configuration (:func:`vireid.engine.config.load_config`).
        cache_dir: a heatmap cache folder (with its ``manifest.json``).
        out_dir: the run folder.
        trial: RegDB trial (overrides ``data.trial``); an error for SYSU-MM01.
        resume: ``None`` (a new run; an error if ``out_dir`` has ``last.pt``), ``'auto'``
            (continue ``out_dir/last.pt`` if present) or a checkpoint path.
        timer: a :class:`~vireid.engine.steptimer.StepTimer` marked at every phase of every step
            (``vireid-train --profile``, :mod:`vireid.experiments.profile`); it may end the run early.

    Raises:
        one of :data:`USER_ERRORS` for a user's mistake, :class:`NonFiniteLossError` when a
        loss is NaN / inf.
    """
    cache_dir, out = Path(cache_dir), Path(out_dir)
    if trial is not None:
        from vireid.data import registry

        if not registry.get(config.dataset).trained_per_trial:
            per_trial = " and ".join(r.spec().full_name for r in registry.readers() if r.trained_per_trial)
            raise TrainError(f"--trial {trial} applies to {per_trial} only (dataset is {config.dataset})")
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, trial=int(trial)))
    cfg = resolve_required(config)
    if "test" in cfg.data.splits:
        raise TrainError("data.splits contains 'test': the test identities are never trained on")
    ensure_writable(out, "run folder (--out)")               # before any work: WriteError names it
    cache, manifest = _open_data(cache_dir)
    check_cache_estimator(cache, cfg)                        # before any work, as the checks above
    device, ctx = ddp.place_process(cfg.device, cfg.ddp.backend, cfg.ddp.timeout_minutes)
    try:
        return _train(cfg, cache, manifest, cache_dir, out, resume, device, ctx, timer or NULL_TIMER)
    except CacheError as exc:                 # a damaged row, maybe met in a DataLoader worker
        raise unwrap_worker_error(exc) from None
    finally:
        ddp.teardown(ctx)


def _train(cfg: TrainConfig, cache: HeatmapCache, manifest: Manifest, cache_dir: Path, out: Path,
           resume: Union[None, str, PathLike], device: torch.device, ctx: DistContext,
           timer: StepTimer = NULL_TIMER) -> TrainResult:
    speed: ResolvedSpeed = resolve_speed(cfg.speed, device)
    logger.info("device %s: %s", device, speed.describe())
    det_before = torch.are_deterministic_algorithms_enabled()
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    seed_everything(cfg.seed)

    # ---- 1. data
    split = split_training_data(cfg, cache, manifest, cache_dir, ctx.rank, ctx.world_size)
    model_cfg = cfg.model_config(num_classes=len(split.label_map))
    check_cache(cache, manifest, cfg, model_cfg)
    logger.info("cache %s: %d images, crops resized with %s", cache_dir, len(cache), resize_filter_of(cache.attrs))
    data = build_loader(cfg, cache, cache_dir, split, ctx.rank, ctx.world_size,
                        pin_memory=speed.pin_memory and device.type == "cuda",
                        heatmaps=heatmap_mode(model_cfg.use_pose_loss, device, cfg.data.erase_targets))

    # ---- 2. model, optimiser; a resume puts the checkpoint's training state back
    resume_from = resume_path(resume, out)
    torch.manual_seed(cfg.seed)
    model = PoseVIReIDNet(model_cfg)
    if resume_from is None:
        cfg = dataclasses.replace(cfg, weights=_initialise(model, cfg))
    if ctx.enabled and cfg.ddp.sync_bn:
        model = ddp.convert_sync_batchnorm(model, device)
    freeze_unused(model, cfg.loss_config())              # what the configuration leaves without a gradient
    if speed.activation_checkpointing:
        logger.info("activation checkpointing: %d blocks recomputed in the backward pass",
                    enable_activation_checkpointing(model))
    model.to(device)
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim)
    scaler = torch.amp.GradScaler(device.type, enabled=speed.grad_scaler)
    done = RunProgress()
    if resume_from is not None:
        ck, resume_from = load_for_resume(resume_from, out)
        check_resumable(ck, resume_from, cfg, manifest, split.label_map, model_cfg)
        done = restore(ck, resume_from, model, optimizer, scheduler, scaler, data.sampler, ctx.rank, ctx.world_size)
        # the weight files the run started from
        cfg = dataclasses.replace(cfg, weights=config_from_dict(ck["config"]).weights)
    net: torch.nn.Module = model
    batch_line = batch_summary(cfg, ctx.world_size)
    if ctx.enabled:
        net = ddp.wrap_model(model, device, cfg.ddp.sync_bn)
        logger.info("DDP: %d processes; %s", ctx.world_size, batch_line)
    else:
        logger.info("%s", batch_line)
    if speed.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        trim_log(out / "log.jsonl", done.global_step)
        save_config(cfg, out / "config.yaml", note=batch_line)
    static = {
        "model_config": dataclasses.asdict(model_cfg), "config": cfg.to_dict(), "dataset": cfg.dataset,
        "trial": cfg.data.trial if _per_trial(cfg.dataset) else None, "manifest_hash": manifest.hash,
        "cache_attrs": dict(cache.attrs), "label_map": dict(split.label_map), "code_version": __version__,
        "weights": dataclasses.asdict(cfg.weights),
    }
    tb_dir = out / "tensorboard" if cfg.tensorboard else None
    log: Any = RunLog(out / "log.jsonl", tensorboard=tb_dir, resume_step=done.global_step) if ctx.is_main else NullLog()
    for i, message in split.damaged:
        log.write("damaged", step=done.global_step, path=cache.paths[i], message=message)

    # ---- 3. and 4.: every batch train_step, every epoch's end validation and checkpoint
    loop = JointLoop(cfg=cfg, model=model, net=net, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                     data=data, cache=cache, device=device, ctx=ctx, speed=speed, timer=timer, log=log, out=out,
                     static=static, done=done)
    losses_png = val_png = None
    try:
        loop.run(done.epochs_done, cfg.epochs)
    finally:
        log.close()
        if cfg.deterministic:
            torch.use_deterministic_algorithms(det_before)
        if ctx.is_main:
            losses_png, val_png = _draw_plots(out)
    ddp.barrier()                                   # every rank returns once rank 0 has written everything
    if not ctx.is_main:
        losses_png = out / "losses.png" if (out / "losses.png").is_file() else None
        val_png = out / "val.png" if (out / "val.png").is_file() else None
    return TrainResult(run_dir=out, last=loop.last, best=loop.best if loop.best.is_file() else None,
                       epochs_done=done.epochs_done, global_step=done.global_step,
                       losses_png=losses_png, val_png=val_png, val_history=done.val_history)


def _draw_plots(out: Path) -> Tuple[Optional[Path], Optional[Path]]:
    """``losses.png`` and ``val.png`` from the run log, each when it has such records."""
    records = read_log(out / "log.jsonl") if (out / "log.jsonl").is_file() else []
    losses_png = val_png = None
    try:
        if any(r.get("kind") == "step" for r in records):
            losses_png = plot_losses(out / "losses.png", records)
        if any(r.get("kind") == "val" for r in records):
            val_png = plot_validation(out / "val.png", records)
    except Exception as exc:  # noqa: BLE001 - a plot must never hide the run's own outcome
        logger.warning("could not draw the plots: %s", exc)
    return losses_png, val_png


def _initialise(model: PoseVIReIDNet, cfg: TrainConfig) -> WeightsRecord:
    """ImageNet backbone (``model.pretrained``) and LIP Refinement Module (``model.pose_init``);
    returns the files used with their SHA-256 (``config.yaml``'s and the checkpoint's ``weights``)."""
    record = WeightsRecord()
    if cfg.model.pretrained is not None:
        path = None if cfg.model.pretrained == "imagenet" else cfg.model.pretrained
        try:
            got = load_imagenet_backbone(model, path)
        except (FileNotFoundError, ValueError) as exc:
            raise TrainError(f"model.pretrained: {exc}") from None
        record = dataclasses.replace(record, imagenet=got["file"], imagenet_sha256=got["sha256"],
                                     imagenet_url=got["url"])
    if cfg.model.pose_init is not None:
        try:
            got = load_pose_branch_from_lip(model, cfg.model.pose_init, stage_index=cfg.model.pose_init_stage)
        except (FileNotFoundError, ValueError) as exc:
            raise TrainError(f"model.pose_init: {exc}") from None
        record = dataclasses.replace(record, pose_init=str(cfg.model.pose_init), pose_init_sha256=got["sha256"])
    return record


def _per_trial(dataset: str) -> bool:
    """Whether ``dataset`` is trained per trial (its reader's ``trained_per_trial``: RegDB)."""
    from vireid.data import registry

    return registry.get(dataset).trained_per_trial
