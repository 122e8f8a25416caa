"""Joint training of the pose / ReID network (paper Section III-E, IV-A) from a heatmap cache.

:func:`train` reads only the cache (its shards, ``cache.json`` and ``manifest.json``),
never the pose estimator, and writes into the run folder ``RUN``::

    RUN/config.yaml     the resolved configuration
    RUN/log.jsonl       every named loss and the lr per step, epoch means, validation
    RUN/last.pt         after every epoch: weights + all training state (exact resume)
    RUN/best.pt         best validation mAP (only with a hold-out: data.holdout)
    RUN/losses.png      loss curves; RUN/val.png validation mAP / R1 (with a hold-out)

Start-up checks, each a clear error naming the file or key: the cache's dataset, input
size and stride against the configuration, its heatmap size against the model's
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
the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`; the
sampler gives rank ``r`` its disjoint ``D / N`` identities of every global batch (the
configured D x K batch is the global one, so the lr needs no scaling); with ``ddp.sync_bn``
and ``ddp.gather_hctri`` (defaults) BatchNorm and the hetero-center triplet loss see the
global batch (the ``gather`` of :func:`vireid.losses.compute_losses`), so N processes compute the single-process gradients. The step's loss values
are averaged over ranks before they are logged and checked, so the non-finite guard stops
every rank at the same step with the same message. Only rank 0 writes the run folder
(``config.yaml``, the log, checkpoints -- atomically --, plots) and validates; its
validation result is broadcast, so every rank agrees on ``best.pt``. ``last.pt`` holds every
rank's RNG state; resume works under DDP as in one process (also with another number of
processes, then up to floating-point summation order). Multi-node runs need the cache
and the run folder on a filesystem shared by all nodes.

Speed switches (``speed:``, :func:`vireid.engine.speed.resolve_speed`): autocast in
bf16 / fp16 (fp16 with a GradScaler, saved in the checkpoint's ``scaler`` slot),
channels-last, pinned memory with non-blocking copies, optional :func:`torch.compile`.
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader

from vireid import __version__
from vireid.data.dataset import CacheDataset, make_label_map, training_indices, unwrap_worker_error
from vireid.data.manifest import Manifest, ManifestError
from vireid.data.sampler import CrossModalitySampler, SamplerError
from vireid.data.shards import CacheError, HeatmapCache
from vireid.data.transforms import TrainTransform, normalise_batch
from vireid.engine import distributed as ddp
from vireid.engine.checkpoint import CheckpointError, save_checkpoint
from vireid.engine.config import ConfigError, TrainConfig, resolve_required, save_config
from vireid.engine.distributed import DistContext, DistributedError
from vireid.engine.errors import NonFiniteLossError, TrainError
from vireid.engine.grad_share import describe, gradient_norms, shared_blocks, weighted_terms
from vireid.engine.optim import build_optimizer, build_scheduler
from vireid.engine.plots import plot_losses, plot_validation
from vireid.engine.run_state import (check_resumable, load_for_resume, resume_path, rng_state, seed_everything,
                                     set_rng_state)
from vireid.engine.runlog import RunLog, read_log, trim_log
from vireid.engine.speed import ResolvedSpeed, resolve_speed
from vireid.engine.steptimer import NULL_TIMER, StepTimer
from vireid.engine.validation import validate, validation_split
from vireid.io import PathLike, WriteError, ensure_writable
from vireid.losses import compute_losses
from vireid.model import ModelConfig, PoseVIReIDNet, load_imagenet_backbone, load_pose_branch_from_lip

logger = logging.getLogger(__name__)

#: Everything a command line should report as one line rather than a traceback.
USER_ERRORS = (TrainError, ConfigError, CacheError, ManifestError, CheckpointError, SamplerError,
               DistributedError, WriteError)


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
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(f"device {name!r} asked for but CUDA is not available here; use --device cpu")
    return device


def check_cache(cache: HeatmapCache, manifest: Manifest, config: TrainConfig, model_config: ModelConfig) -> None:
    """Cache attributes against the configuration (raises :class:`TrainError`)."""
    root = cache.root
    attrs = cache.attrs
    if manifest.dataset != config.dataset:
        raise TrainError(f"{root} holds {manifest.dataset} data but the configuration says dataset: "
                         f"{config.dataset}; use the {manifest.dataset} preset or set dataset={manifest.dataset}")
    if attrs.get("dataset") not in (None, manifest.dataset):
        raise TrainError(f"{root}/cache.json says dataset {attrs.get('dataset')!r} but its manifest.json is "
                         f"{manifest.dataset!r}: the cache folder is inconsistent; rebuild it")
    have = tuple(attrs.get("input_size", ()))
    want = tuple(config.data.input_size)
    if have != want:
        raise TrainError(f"{root}/cache.json: input_size {'x'.join(map(str, have))} differs from the configured "
                         f"data.input_size {want[0]}x{want[1]}: set data.input_size=[{', '.join(map(str, have))}] "
                         f"or rebuild the cache with --input-size {want[0]}x{want[1]}")
    if int(attrs.get("stride", -1)) != config.data.stride:
        raise TrainError(f"{root}/cache.json: heatmap stride {attrs.get('stride')} differs from data.stride "
                         f"{config.data.stride}")
    if model_config.use_pose_loss:
        hm = tuple(int(s) for s in attrs.get("heatmap_size", ()))
        predicted = model_config.heatmap_size()
        if hm != predicted:
            raise TrainError(f"{root}/cache.json: heatmaps are {'x'.join(map(str, hm))} but the model predicts "
                             f"{predicted[0]}x{predicted[1]} at input {want[0]}x{want[1]} (model.heatmap_size): "
                             "rebuild the cache with stride 4 or change the input size")


def _open_data(cache_dir: Path) -> Tuple[HeatmapCache, Manifest]:
    cache = HeatmapCache(cache_dir)                                   # CacheError: incomplete, missing shard
    manifest = Manifest.load(cache_dir / "manifest.json")            # ManifestError
    return cache, manifest


def _check_finite(values: Mapping[str, float], epoch: int, it: int, step: int, last: Path,
                  epochs_done: int) -> None:
    """Raise :class:`NonFiniteLossError` for the first NaN / inf of ``values`` (the step's loss
    values, averaged over ranks: every rank raises the same message at the same step)."""
    for name, v in values.items():
        if not np.isfinite(v):
            kept = (f"{last} holds epoch {epochs_done}, the last good one" if last.is_file()
                    else "no checkpoint was written yet")
            raise NonFiniteLossError(f"loss {name!r} is {v} at epoch {epoch}, step {it} of the epoch (global step "
                                     f"{step}): training stopped before the update; {kept}")


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
            (``vireid-train --profile``, :mod:`vireid.engine.profile`); it may end the run early.

    Raises:
        one of :data:`USER_ERRORS` for a user's mistake, :class:`NonFiniteLossError` when a
        loss is NaN / inf.
    """
    cache_dir, out = Path(cache_dir), Path(out_dir)
    if trial is not None:
        if config.dataset != "regdb":
            raise TrainError(f"--trial {trial} applies to RegDB only (dataset is {config.dataset})")
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, trial=int(trial)))
    cfg = resolve_required(config)
    if "test" in cfg.data.splits:
        raise TrainError("data.splits contains 'test': the test identities are never trained on")
    ensure_writable(out, "run folder (--out)")               # before any work: WriteError names it
    cache, manifest = _open_data(cache_dir)
    device, ctx = _setup_process(cfg)
    try:
        return _train(cfg, cache, manifest, cache_dir, out, resume, device, ctx, timer or NULL_TIMER)
    except CacheError as exc:                 # a damaged row, maybe met in a DataLoader worker
        raise unwrap_worker_error(exc) from None
    finally:
        ddp.teardown(ctx)


def _setup_process(cfg: TrainConfig) -> Tuple[torch.device, DistContext]:
    """This process's device and its place in a torchrun run (a no-op context without one)."""
    device = resolve_device(cfg.device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        world = torch.distributed.get_world_size()
    else:
        world = ddp.env_world().world_size
    if world > 1 and device.type == "cuda":
        local = ddp.env_world().local_rank
        if cfg.device.startswith("cuda:"):
            raise TrainError(f"device={cfg.device}: under torchrun every rank takes cuda:LOCAL_RANK; set device "
                             "to auto or cuda (choose GPUs with CUDA_VISIBLE_DEVICES)")
        if local >= torch.cuda.device_count():
            raise TrainError(f"LOCAL_RANK={local} but only {torch.cuda.device_count()} CUDA device(s) are visible: "
                             "use --nproc-per-node <= the number of GPUs")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    return device, ddp.setup(device, cfg.ddp.backend, timeout_minutes=cfg.ddp.timeout_minutes)


class _NoLog:
    """The run log of ranks other than 0: they write nothing."""

    def write(self, kind: str, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _step_values(losses: Mapping[str, torch.Tensor]) -> Dict[str, float]:
    """The step's loss values as floats, averaged over ranks (unchanged in one process)."""
    names = list(losses)
    vec = torch.stack([losses[k].detach().float().reshape(()) for k in names])
    return dict(zip(names, ddp.all_reduce_mean(vec).cpu().tolist()))


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

    # ---- data
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
        train_idx, val_idx, damaged = _without_damaged(cache, train_idx, val_idx)
    meta = cache.metadata()
    label_map = make_label_map(meta["pid"][np.asarray(train_idx)].tolist())
    model_cfg = cfg.model_config(num_classes=len(label_map))
    check_cache(cache, manifest, cfg, model_cfg)
    # workers do the geometry on uint8; normalisation and erasing run on the device per batch
    transform_cfg = cfg.data.transform_config()
    dataset = CacheDataset(cache, train_idx, TrainTransform(transform_cfg, device_normalise=True), seed=cfg.seed,
                           label_map=label_map)
    if cfg.data.num_ids % ctx.world_size:
        raise TrainError(f"data.num_ids={cfg.data.num_ids} identities per (global) batch cannot be split evenly "
                         f"between {ctx.world_size} processes: use a multiple of {ctx.world_size} or another "
                         "--nproc-per-node")
    try:
        sampler = CrossModalitySampler(dataset.pids, dataset.modalities, cfg.data.sampler_config(), seed=cfg.seed,
                                       rank=ctx.rank, world_size=ctx.world_size, keyed=True)
    except SamplerError as exc:
        raise TrainError(f"{cache_dir}: {exc} (data.num_ids={cfg.data.num_ids})") from None
    pin = speed.pin_memory and device.type == "cuda"
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.data.workers, pin_memory=pin,
                        persistent_workers=cfg.data.workers > 0)
    val_query: List[int] = []
    val_gallery: List[int] = []
    if cfg.data.holdout is not None:
        val_query, val_gallery = validation_split(cache, val_idx)
        if not val_query or not val_gallery:
            raise TrainError(f"{cache_dir}: the held-out identities (data.holdout={cfg.data.holdout}) have no "
                             "identity with both RGB and IR images: nothing to validate on")

    # ---- model, optimiser
    resume_from = resume_path(resume, out)
    torch.manual_seed(cfg.seed)
    model = PoseVIReIDNet(model_cfg)
    if resume_from is None:
        _initialise(model, cfg)
    if ctx.enabled and cfg.ddp.sync_bn:
        model = ddp.convert_sync_batchnorm(model, device)
    model.to(device)
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim)
    scaler = torch.amp.GradScaler(device.type, enabled=speed.grad_scaler)
    loss_cfg = cfg.loss_config()
    blocks = shared_blocks(model)                                     # measured every cfg.grad_every steps
    gather = ddp.gather_batch if ctx.enabled and cfg.ddp.gather_hctri else None   # hctri over the global batch

    start_epoch, global_step = 0, 0
    val_history: List[Dict[str, float]] = []
    best_map = -1.0
    if resume_from is not None:
        ck, resume_from = load_for_resume(resume_from, out)
        check_resumable(ck, resume_from, cfg, manifest, label_map, model_cfg)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        if scaler.is_enabled() and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        try:
            sampler.load_state_dict(ck["sampler"])
        except ValueError as exc:
            raise TrainError(f"{resume_from}: {exc}") from None
        start_epoch, global_step = int(ck["epoch"]), int(ck.get("global_step", 0))
        val_history = list(ck.get("history", {}).get("val", []))
        best_map = float(ck.get("history", {}).get("best_mAP", -1.0))
        ranks = ck.get("rng_ranks")
        set_rng_state(ranks[ctx.rank] if ranks and len(ranks) == ctx.world_size else ck["rng"])
        logger.info("resumed from %s: %d epoch(s) done, global step %d", resume_from, start_epoch, global_step)
    net: torch.nn.Module = model
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        # with synchronised BatchNorm the running statistics are equal on every rank already
        sync_key = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                    else "broadcast_buffers")
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                      **{sync_key: not cfg.ddp.sync_bn})
        logger.info("DDP: %d processes, %d of the %d identities of every global batch of %d images on this rank",
                    ctx.world_size, cfg.data.num_ids // ctx.world_size, cfg.data.num_ids,
                    cfg.data.sampler_config().batch_size)
    if speed.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        trim_log(out / "log.jsonl", global_step)
        save_config(cfg, out / "config.yaml")

    last, best = out / "last.pt", out / "best.pt"
    static = {
        "model_config": dataclasses.asdict(model_cfg), "config": cfg.to_dict(), "dataset": cfg.dataset,
        "trial": cfg.data.trial if cfg.dataset == "regdb" else None, "manifest_hash": manifest.hash,
        "cache_attrs": dict(cache.attrs), "label_map": dict(label_map), "code_version": __version__,
    }
    tb_dir = out / "tensorboard" if cfg.tensorboard else None
    log: Any = RunLog(out / "log.jsonl", tensorboard=tb_dir, resume_step=global_step) if ctx.is_main else _NoLog()
    for i, message in damaged:
        log.write("damaged", step=global_step, path=cache.paths[i], message=message)
    epochs_done = start_epoch
    batch_images = sampler.batch_size * ctx.world_size                # the global batch
    show_bar = cfg.progress and ctx.is_main
    amp_dtype = speed.amp_dtype or torch.bfloat16                     # unused while autocast is off
    nb = pin
    losses_png = val_png = None
    try:
        for epoch in range(start_epoch, cfg.epochs):
            sampler.set_epoch(epoch)
            model.train()
            sums: Dict[str, float] = defaultdict(float)
            steps = 0
            t_epoch = t_prev = time.perf_counter()
            n_batches = len(sampler)                                  # fixed before the sampler counts down
            bar = _progress(loader, n_batches, f"epoch {epoch + 1}/{cfg.epochs}", show_bar)
            timer.start(device)
            for it, batch in enumerate(bar, 1):
                timer.mark("data wait")
                images = batch["image"].to(device, non_blocking=nb)                 # [B, 3, H, W] uint8
                images = normalise_batch(images, batch["erase"], transform_cfg)       # [B, 3, H, W] float32
                if speed.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                labels = batch["label"].to(device, non_blocking=nb)                 # [B]
                modality = batch["modality"].to(device, non_blocking=nb)            # [B]
                heatmaps = batch["heatmaps"].to(device, non_blocking=nb)            # [B, 16, Hm, Wm]
                joint_w = batch["joint_weights"].to(device, non_blocking=nb)        # [B, 16]
                timer.mark("to device")
                with torch.autocast(device.type, dtype=amp_dtype, enabled=speed.amp_dtype is not None):
                    output = net(images, modality)
                    losses = compute_losses(output, labels, modality, heatmaps, joint_w, loss_cfg, gather=gather)
                timer.mark("forward")
                timer.keep(output, labels, modality, heatmaps, joint_w)
                global_step += 1
                if cfg.grad_every and global_step % cfg.grad_every == 0:
                    grads = gradient_norms(weighted_terms(losses, loss_cfg), blocks)   # extra backward per term
                    log.write("grad", epoch=epoch + 1, step=global_step, **grads)
                    logger.info("step %d, gradient-norm share on the modality-shared module: %s", global_step,
                                describe(grads))
                values = _step_values(losses)                         # the same on every rank
                lr = optimizer.param_groups[-1]["lr"]
                if not all(np.isfinite(v) for v in values.values()):
                    log.write("step", epoch=epoch + 1, step=global_step, iter=it, lr=lr, **values)
                    _check_finite(values, epoch + 1, it, global_step, last, epoch)
                optimizer.zero_grad(set_to_none=True)
                timer.mark("other")
                scaler.scale(losses["total"]).backward()
                timer.mark("backward")
                scaler.step(optimizer)
                scaler.update()
                timer.mark("optimizer")
                now = time.perf_counter()
                rate = batch_images / max(now - t_prev, 1e-9)
                t_prev = now
                log.write("step", epoch=epoch + 1, step=global_step, iter=it, lr=lr, images_per_s=round(rate, 2),
                          **values)
                for k, v in values.items():
                    sums[k] += v
                steps += 1
                if it % cfg.log_every == 0 or it == n_batches:
                    shown = {k: f"{v:.4g}" for k, v in values.items()}
                    if show_bar:
                        bar.set_postfix({**shown, "img/s": f"{rate:.0f}"}, refresh=False)
                    else:
                        logger.info("epoch %d step %d/%d: %s, lr %.3g, %.0f img/s", epoch + 1, it, n_batches,
                                    ", ".join(f"{k} {v}" for k, v in shown.items()), lr, rate)
                timer.end_step()
            scheduler.step()
            means = {k: v / max(steps, 1) for k, v in sums.items()}
            seconds = time.perf_counter() - t_epoch
            log.write("epoch", epoch=epoch + 1, step=global_step, seconds=round(seconds, 2), **means)
            logger.info("epoch %d/%d: %s (%.1f s)", epoch + 1, cfg.epochs,
                        ", ".join(f"{k} {v:.4g}" for k, v in means.items()), seconds)
            val = None
            if val_query and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
                if ctx.is_main:                                       # rank 0 validates, everyone gets its result
                    val = validate(model, cache, val_query, val_gallery, device, cfg.data.val_batch_size,
                                   cfg.loss.pose_min_confidence)
                val = ddp.broadcast_object(val)
                val_history.append({"epoch": epoch + 1, **val})
                log.write("val", epoch=epoch + 1, step=global_step, **val)
                logger.info("validation after epoch %d: mAP %.2f%%, R1 %.2f%% (f_all)%s", epoch + 1,
                            100 * val["mAP"], 100 * val["R1"],
                            "".join(f", pose branch PCKh@0.5 {m.upper()} {100 * val[f'pckh_{m}']:.1f}%"
                                    for m in ("rgb", "ir") if f"pckh_{m}" in val))
            improved = val is not None and val["mAP"] > best_map
            if improved:
                best_map = val["mAP"]
            own_rng = rng_state()
            all_rng = ddp.all_gather_object(own_rng) if ctx.enabled else None
            if ctx.is_main:
                payload = {
                    **static, "model": model.state_dict(), "epoch": epoch + 1, "global_step": global_step,
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler.is_enabled() else None, "rng": own_rng,
                    "rng_ranks": all_rng, "world_size": ctx.world_size,
                    "sampler": {**sampler.state_dict(consumed=0), "epoch": epoch + 1},
                    "history": {"val": val_history, "best_mAP": best_map}, "val": val, "losses": means,
                }
                save_checkpoint(last, payload, keep_previous=True)      # last.prev.pt: the fallback
                if improved:
                    save_checkpoint(best, payload)
                    logger.info("best validation mAP so far: %s", best)
            epochs_done = epoch + 1
    finally:
        log.close()
        if cfg.deterministic:
            torch.use_deterministic_algorithms(det_before)
        if ctx.is_main:
            records = read_log(out / "log.jsonl") if (out / "log.jsonl").is_file() else []
            try:
                if any(r.get("kind") == "step" for r in records):
                    losses_png = plot_losses(out / "losses.png", records)
                if any(r.get("kind") == "val" for r in records):
                    val_png = plot_validation(out / "val.png", records)
            except Exception as exc:  # noqa: BLE001 - a plot must never hide the run's own outcome
                logger.warning("could not draw the plots: %s", exc)
    ddp.barrier()                                   # every rank returns once rank 0 has written everything
    if not ctx.is_main:
        losses_png = out / "losses.png" if (out / "losses.png").is_file() else None
        val_png = out / "val.png" if (out / "val.png").is_file() else None
    return TrainResult(run_dir=out, last=last, best=best if best.is_file() else None,
                       epochs_done=epochs_done, global_step=global_step,
                       losses_png=losses_png, val_png=val_png, val_history=val_history)


def _without_damaged(cache: HeatmapCache, train_idx: Sequence[int],
                     val_idx: Sequence[int]) -> Tuple[List[int], List[int], List[Tuple[int, str]]]:
    """``data.damaged_rows: skip``: read every training and held-out row once and leave out
    those that fail their checksums, saying which."""
    damaged = cache.damaged_rows(sorted(set(train_idx) | set(val_idx)))
    bad = {i for i, _ in damaged}
    for _, message in damaged:
        logger.warning("left out (data.damaged_rows=skip): %s", message)
    if damaged:
        logger.warning("%d damaged row(s) left out of %d", len(damaged), len(set(train_idx) | set(val_idx)))
    return [i for i in train_idx if i not in bad], [i for i in val_idx if i not in bad], damaged


def _initialise(model: PoseVIReIDNet, cfg: TrainConfig) -> None:
    """ImageNet backbone (``model.pretrained``) and LIP Refinement Module (``model.pose_init``)."""
    if cfg.model.pretrained is not None:
        path = None if cfg.model.pretrained == "imagenet" else cfg.model.pretrained
        try:
            load_imagenet_backbone(model, path)
        except (FileNotFoundError, ValueError) as exc:
            raise TrainError(f"model.pretrained: {exc}") from None
    if cfg.model.pose_init is not None:
        try:
            load_pose_branch_from_lip(model, cfg.model.pose_init, stage_index=cfg.model.pose_init_stage)
        except (FileNotFoundError, ValueError) as exc:
            raise TrainError(f"model.pose_init: {exc}") from None


def _progress(loader: DataLoader, total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return loader
    from tqdm.auto import tqdm

    return tqdm(loader, total=total, desc=desc, unit="step", dynamic_ncols=True, leave=False)
