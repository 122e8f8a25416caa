"""``vireid-prep train-estimator``: train GCCPM on LIP with GCCPM's recipe.

The estimator whose heatmaps supervise the joint model is GCCPM pretrained on LIP
(the paper's ref. [34]). This trains one from a LIP root (or a synthetic LIP set)
and writes ``weights.pt`` in the public checkpoint's layout, ``{'state_dict': {name:
tensor}}``, plus ``input_size`` (the square side it was trained at), which
:func:`vireid.pose.gccpm.load_gccpm_checkpoint` loads strictly and ``vireid-prep heatmaps
--estimator lip --weights weights.pt`` uses (at that input size unless ``--estimator-size``).

Recipe (GCCPM's ``train.py``; data side in :mod:`pipeline.lip_data`):

* input 256x256, the LIP train split, GCCPM's augmentation, stride-8 Gaussian targets
  (sigma 7) for the 16 joints plus the background map;
* loss: for every stage (initial + each refinement stage, i.e. intermediate
  supervision) GCCPM's ``l2_loss`` = sum of squared errors / 2 / batch size, summed
  over the stages; here each joint channel is multiplied by its weight (0 for an
  occluded or missing joint by default; see :mod:`pipeline.lip_data`);
* Adam, base lr 4e-5, weight decay 5e-4, batch 32, 100 epochs, with GCCPM's parameter
  groups (:func:`pipeline.estimator_optim.gccpm_param_groups`: refinement-stage convolutions at 4x the lr and
  their biases at 8x, other biases at 2x, no weight decay on biases, BatchNorm and
  depthwise weights); ``ReduceLROnPlateau(factor=0.1, patience=5, threshold=1e-2)``
  on ``100 - val PCKh`` after each epoch (``schedule='cosine'``: a 5 % warm-up and a cosine
  decay to 0 over the run, stepped every update, for short runs such as the demo's);
* validation: PCKh@0.5 (:func:`pckh`, LIP's definition as in GCCPM's ``calc_pckh``) on
  the first 1000 val images in file-name order (GCCPM's ``eval_num``), each fitted to
  the input like training images without augmentation (GCCPM's ``val.py`` does the
  same fit). Keypoints come from the last stage's stride-8 maps with a quarter-cell
  refinement (the targets' codec, :meth:`vireid.pose.codec.HeatmapCodec.decode`), mapped back to image
  pixels; GCCPM instead upsamples the maps (bicubic) to the image and takes the
  argmax, which is finer, so the same network can score slightly lower here.

GCCPM starts from ImageNet MobileNet weights; nothing is downloaded here, so
``--init`` takes a GCCPM checkpoint to start from, and without it the network starts
from PyTorch's default initialisation. Outputs: ``OUT`` (weights, rewritten atomically
after every epoch), ``OUT`` with ``.log.json`` (configuration and per-epoch loss and
val PCKh) and ``OUT`` with ``.state.pt`` (optimizer and scheduler, for ``--resume``).

The run follows :mod:`vireid.engine.loop` (as ``vireid-train``): 1. LIP data, 2. network, optimizer,
resume; 3. :meth:`_EstimatorLoop.train_step` (the cosine schedule steps after each update),
4. :meth:`_EstimatorLoop.end_of_epoch` (val PCKh, the plateau schedule's step, files). A resume is exact: an epoch's order and augmentation derive from (seed, epoch).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from pipeline.lip_data import AugmentConfig, LipTrainSet, LipValSet, TargetConfig, split_records
from pipeline.estimator_optim import ESTIMATOR_SCHEDULES, build_estimator_optimizer, heatmap_loss
from pipeline.estimator_val import evaluate_pckh
from vireid.engine.loop import (DeviceError, EpochLoop, EpochStats, changed_keys, progress_bar, read_with_fallback,
                                resolve_device)
from vireid.io import WriteError, atomic_write_json, ensure_writable, previous_path
from vireid.pose.pckh import PCKh
from vireid.sealing import DamagedFileError, torch_load, torch_save

if TYPE_CHECKING:   # torch is imported where it is used, so `vireid-prep --help` stays quick
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

log = logging.getLogger(__name__)

LOG_FORMAT = "vireid-train-estimator/1"


class TrainEstimatorError(ValueError):
    """A user's mistake (bad root, option, checkpoint or resume state), with the file or option at fault."""


@dataclass(frozen=True)
class EstimatorTrainConfig:
    """GCCPM's training defaults (``train.py``); the demo scales epochs, size and stages down."""

    epochs: int = 100
    batch_size: int = 32
    lr: float = 4e-5
    weight_decay: float = 5e-4
    input_size: int = 256
    num_refinement_stages: int = 5
    num_channels: int = 128                       # GCCPM's feature width (a refinement stage's)
    sigma: Optional[float] = None                 # None: 7 px at stride 8 (TargetConfig.sigma_px)
    occluded: str = "ignore"
    missing: str = "ignore"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    schedule: str = "plateau"                     # 'plateau' (GCCPM) | 'cosine' (build_estimator_optimizer)
    warmup_fraction: float = 0.05                 # cosine: share of all updates spent warming up
    plateau_factor: float = 0.1
    plateau_patience: int = 5
    plateau_threshold: float = 1e-2
    val_images: int = 1000                        # 0: the whole val split
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "input_size", "num_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_refinement_stages < 0:
            raise ValueError(f"num_refinement_stages must be >= 0, got {self.num_refinement_stages}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.schedule not in ESTIMATOR_SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r}: choose one of {', '.join(ESTIMATOR_SCHEDULES)}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        self.targets()   # validates input size and policies

    def targets(self) -> TargetConfig:
        return TargetConfig(input_size=self.input_size, sigma=self.sigma, occluded=self.occluded,
                            missing=self.missing)


# ---------------------------------------------------------------- files
def log_path(out: Path) -> Path:
    """``weights.pt`` -> ``weights.log.json``."""
    return out.with_name(out.stem + ".log.json")


def state_path(out: Path) -> Path:
    """``weights.pt`` -> ``weights.state.pt`` (optimizer, scheduler, epoch: for ``--resume``)."""
    return out.with_name(out.stem + ".state.pt")


def save_weights(model: nn.Module, out: Path, input_size: int) -> None:
    """Write ``{'state_dict': ..., 'input_size': side}`` atomically: the public GCCPM layout
    (float32, CPU tensors) plus the square input side it was trained at, which the ``lip``
    estimator of ``vireid-prep heatmaps`` runs it at by default. Sealed (:mod:`vireid.sealing`):
    ``--weights`` refuses a truncated or bit-flipped copy."""
    sd = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch_save({"state_dict": sd, "input_size": int(input_size)}, out)


def _config_json(cfg: EstimatorTrainConfig) -> Dict[str, Any]:
    doc = dataclasses.asdict(cfg)
    doc["sigma_px"] = cfg.targets().sigma_px
    return doc


def _worker_init(_: int) -> None:
    """One OpenCV / torch thread per loader worker (GCCPM disables OpenCV threads to avoid loader stalls)."""
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


# ---------------------------------------------------------------- training
@dataclass
class EstimatorTrainResult:
    out: Path
    epochs: List[Dict[str, Any]]
    initial_pckh: Optional[PCKh]
    final_pckh: Optional[PCKh]


def train_estimator(root: "str | Path", out: "str | Path", cfg: EstimatorTrainConfig = EstimatorTrainConfig(), *,
                    init: Optional["str | Path"] = None, resume: bool = False, device: str = "cpu",
                    workers: int = 0, allow_partial: bool = False, progress: bool = False,
                    max_iters_per_epoch: Optional[int] = None,
                    on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None) -> EstimatorTrainResult:
    """Train GCCPM on the LIP data set at ``root``; write ``out`` and its log (see module docstring).

    ``max_iters_per_epoch`` caps the batches of an epoch (smoke tests); ``on_epoch`` is
    called with each epoch's log entry. Raises :class:`TrainEstimatorError` for a bad
    root, checkpoint, device or resume state.
    """
    import torch
    from torch.utils.data import DataLoader

    from vireid.data.scan import scan
    from vireid.data.scan_checks import ScanError
    from vireid.io import file_sha256
    from vireid.pose.gccpm import GCCPM, CheckpointMismatchError, load_gccpm_checkpoint

    # ---- 1. data
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise TrainEstimatorError(f"--root {root}: not a directory (expected the LIP root holding "
                                  f"TrainVal_images/ and TrainVal_pose_annotations/)")
    try:
        ensure_writable(out.parent, "output folder (--out)")
    except WriteError as exc:
        raise TrainEstimatorError(str(exc)) from None
    try:
        manifest = scan("lip", root, allow_partial=allow_partial, jobs=max(1, workers), progress=progress)
    except ScanError as exc:
        raise TrainEstimatorError(f"--root {root} is not a usable LIP data set:\n{exc}") from None
    train_records = split_records(manifest.records, "train")
    val_records = split_records(manifest.records, "val")
    if not train_records:
        raise TrainEstimatorError(f"--root {root}: the LIP train split has no annotated image")
    if cfg.val_images > 0:
        val_records = val_records[:cfg.val_images]
    try:
        dev = resolve_device(device)
    except DeviceError as exc:
        raise TrainEstimatorError(f"--device {device}: {exc}") from None

    # ---- 2. model, optimizer; a resume puts the saved state back
    torch.manual_seed(cfg.seed)
    model = GCCPM(num_refinement_stages=cfg.num_refinement_stages, num_channels=cfg.num_channels)
    init_sha = None
    if init is not None:
        try:
            model = load_gccpm_checkpoint(init, num_refinement_stages=cfg.num_refinement_stages)
            if model.cpm[1][0].out_channels != cfg.num_channels:
                raise CheckpointMismatchError(f"{init} has {model.cpm[1][0].out_channels} feature channels, "
                                              f"num_channels is {cfg.num_channels}")
        except CheckpointMismatchError as exc:
            raise TrainEstimatorError(f"--init: {exc}") from None
        init_sha = file_sha256(init)
    model.to(dev).train()
    steps = -(-len(train_records) // cfg.batch_size)
    optimizer, scheduler = build_estimator_optimizer(model, cfg, steps if max_iters_per_epoch is None
                                           else min(steps, max_iters_per_epoch))

    history: List[Dict[str, Any]] = []
    start_epoch = 0
    initial: Optional[PCKh] = None
    spath = state_path(out)
    if resume and (spath.is_file() or previous_path(spath).is_file()):
        start_epoch, history, initial = _load_state(spath, model, optimizer, scheduler, cfg, dev)
        log.info("resuming %s after epoch %d", out, start_epoch)
    elif resume:
        log.warning("--resume: %s not found; starting from scratch", spath)

    train_set = LipTrainSet(root, train_records, cfg.targets(), cfg.augment, seed=cfg.seed)
    val_loader = None
    if val_records:
        val_loader = DataLoader(LipValSet(root, val_records, cfg.input_size), batch_size=cfg.batch_size,
                                shuffle=False, num_workers=workers, worker_init_fn=_worker_init)
    else:
        log.warning("%s: no val image: PCKh is not computed", root)

    header = {"format": LOG_FORMAT, "root": str(root), "manifest_hash": manifest.hash,
              "train_images": len(train_records), "val_images": len(val_records), "init": str(init) if init else None,
              "init_sha256": init_sha, "device": str(dev), "config": _config_json(cfg)}
    if initial is None and val_loader is not None and start_epoch == 0:
        initial = evaluate_pckh(model, val_loader, dev, cfg.targets().codec)
        log.info("val PCKh before training: %.2f", initial.average)

    # ---- 3. and 4.: every batch train_step, every epoch's end val PCKh and the files
    loop = _EstimatorLoop(model=model, optimizer=optimizer, scheduler=scheduler, cfg=cfg, train_set=train_set,
                          val_loader=val_loader, dev=dev, out=out, header=header, history=history, initial=initial,
                          workers=workers, show_progress=progress, max_iters=max_iters_per_epoch, on_epoch=on_epoch)
    loop.run(start_epoch, cfg.epochs)
    if start_epoch >= cfg.epochs:
        log.info("%s: already trained for %d epoch(s)", out, cfg.epochs)
        save_weights(model, out, cfg.input_size)
    return EstimatorTrainResult(out=out, epochs=history, initial_pckh=initial, final_pckh=loop.final)


@dataclass
class _EstimatorLoop(EpochLoop):
    """Steps 3 and 4 of :mod:`vireid.engine.loop` for GCCPM: a batch through every stage to the
    summed loss (``'loss'``, backpropagated) and each stage's (``'stage<i>'``); after each
    epoch val PCKh, the plateau scheduler's step (``schedule='plateau'``) and the weights, state
    and log written."""

    model: "nn.Module"
    optimizer: "torch.optim.Optimizer"
    scheduler: Any
    cfg: EstimatorTrainConfig
    train_set: LipTrainSet
    val_loader: Optional["DataLoader"]
    dev: "torch.device"
    out: Path
    header: Dict[str, Any]                            # the log's fixed part
    history: List[Dict[str, Any]]                     # one entry per epoch, extended as the run goes
    initial: Optional[PCKh]
    workers: int
    show_progress: bool
    max_iters: Optional[int]                          # batches per epoch at most (smoke tests)
    on_epoch: Optional[Callable[[Dict[str, Any]], None]]
    final: Optional[PCKh] = None                      # the last epoch's val PCKh
    objective = "loss"

    def batches(self, epoch: int) -> Any:
        """The epoch's shuffled batches: the order from (seed, epoch), the augmentation from the data set's epoch."""
        import torch
        from torch.utils.data import DataLoader

        self.t0 = time.perf_counter()
        self.train_set.set_epoch(epoch)
        gen = torch.Generator().manual_seed(self.cfg.seed * 1000003 + epoch)
        loader = DataLoader(self.train_set, batch_size=self.cfg.batch_size, shuffle=True, generator=gen,
                            num_workers=self.workers, drop_last=False, worker_init_fn=_worker_init,
                            pin_memory=self.dev.type == "cuda")
        n_batches = len(loader) if self.max_iters is None else min(len(loader), self.max_iters)
        self.bar = progress_bar(islice(loader, n_batches), n_batches, f"epoch {epoch + 1}/{self.cfg.epochs}",
                                self.show_progress, unit="batch")
        return self.bar

    def train_step(self, batch: Mapping[str, Any]) -> Dict[str, Any]:
        stages = self.model(batch["image"].to(self.dev, non_blocking=True))
        loss, per_stage = heatmap_loss(stages, batch["maps"].to(self.dev), batch["weights"].to(self.dev))
        return {"loss": loss, **{f"stage{i}": v for i, v in enumerate(per_stage)}}

    def non_finite(self, epoch: int, it: int, values: Mapping[str, float], name: str, value: float) -> None:
        raise TrainEstimatorError(f"epoch {epoch + 1}: the loss became {value}; lower --lr")

    def after_step(self, epoch: int, it: int, values: Mapping[str, float], stats: EpochStats) -> None:
        if self.cfg.schedule == "cosine":
            self.scheduler.step()
        if hasattr(self.bar, "set_postfix"):
            self.bar.set_postfix(loss=f"{stats.means()['loss']:.4f}")

    def end_of_epoch(self, epoch: int, stats: EpochStats) -> None:
        cfg, means = self.cfg, stats.means()
        entry: Dict[str, Any] = {"epoch": epoch + 1, "loss": means.get("loss", 0.0),
                                 "stage_losses": [means.get(f"stage{i}", 0.0)
                                                  for i in range(cfg.num_refinement_stages + 1)],
                                 "batches": stats.steps, "lr": self.optimizer.param_groups[0]["lr"]}
        if self.val_loader is not None:
            self.final = final = evaluate_pckh(self.model, self.val_loader, self.dev, cfg.targets().codec)
            entry["val_pckh"] = final.to_json()["average"]
            entry["val_upper_body"] = final.to_json()["upper_body"]
            if cfg.schedule == "plateau":
                self.scheduler.step(100.0 - (final.average if np.isfinite(final.average) else 0.0))
        entry["seconds"] = round(time.perf_counter() - self.t0, 3)
        self.history.append(entry)
        log.info("epoch %d: loss %.5f%s", epoch + 1, entry["loss"],
                 f", val PCKh {self.final.average:.2f}" if self.final is not None else "")
        save_weights(self.model, self.out, cfg.input_size)
        _save_state(state_path(self.out), self.model, self.optimizer, self.scheduler, cfg, epoch + 1, self.history,
                    self.initial)
        atomic_write_json(log_path(self.out), {
            **self.header, "initial_val": self.initial.to_json() if self.initial else None,
            "final_val": self.final.to_json() if self.final else None, "epochs": self.history})
        if self.on_epoch is not None:
            self.on_epoch(entry)


def _save_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                cfg: EstimatorTrainConfig, epoch: int, history: List[Dict[str, Any]], initial: Optional[PCKh]) -> None:
    state = {"epoch": epoch, "config": json.loads(json.dumps(_config_json(cfg))), "history": history,
             "initial_val": initial.to_json() if initial else None,
             "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict()}
    torch_save(state, path, keep_previous=True)        # OUT-stem.state.prev.pt: the fallback of --resume


#: config fields that may change on --resume (the rest must match the interrupted run); not
#: ``epochs`` under the cosine schedule, whose every step's lr depends on the run's length
_RESUMABLE = {"epochs"}


def _load_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                cfg: EstimatorTrainConfig, dev: torch.device) -> Tuple[int, List[Dict[str, Any]], Optional[PCKh]]:
    def read(p: Path) -> Dict[str, Any]:
        try:
            state = torch_load(p, "training state", map_location=dev, weights_only=True)
            state["config"]
            return state
        except (DamagedFileError, KeyError, TypeError) as exc:
            raise TrainEstimatorError(f"--resume: {exc}" if isinstance(exc, DamagedFileError) else
                                      f"--resume: {p} is not a training state of train-estimator") from None

    state, used, damaged = read_with_fallback(path, read, TrainEstimatorError, what="training state")
    if damaged is not None:
        log.warning("%s; resuming from the previous state %s (epoch %s) instead", str(damaged)[len("--resume: "):],
                    used, state.get("epoch"))
    may_change = _RESUMABLE if cfg.schedule == "plateau" else ()
    diff = changed_keys(state["config"], json.loads(json.dumps(_config_json(cfg))), may_change)
    if diff:
        raise TrainEstimatorError(f"--resume: {path} was written with different options ({', '.join(diff)}); "
                                  f"use the same options or drop --resume")
    model.load_state_dict(state["state_dict"], strict=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    init = state.get("initial_val")
    initial = None
    if init:
        initial = PCKh(per_joint=np.array([np.nan if v is None else v for v in init["per_joint"]]),
                       upper_body=np.nan if init["upper_body"] is None else init["upper_body"],
                       average=np.nan if init["average"] is None else init["average"],
                       images=init["images"], joints=init["joints"])
    return int(state["epoch"]), list(state["history"]), initial
