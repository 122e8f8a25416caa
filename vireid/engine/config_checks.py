"""The value checks of a training configuration across its sections (:func:`validate`,
run by :func:`vireid.engine.config.load_config` on every file, override and checkpoint),
and the values they accept. The section dataclasses check their own fields."""
from __future__ import annotations

from typing import TYPE_CHECKING

from vireid.cache.format import ESTIMATOR_NAMES
from vireid.engine.speed import AMP_VALUES, SWITCH_VALUES
from vireid.model.config import check_input_size

if TYPE_CHECKING:
    from vireid.engine.config import TrainConfig

DEVICES_HINT = "auto, cpu, cuda or cuda:N"
SCHEDULES = ("step", "milestones")
DDP_BACKENDS = ("auto", "nccl", "gloo")
DDP_BATCH = ("global", "per_rank")

#: A preset's value for a key the user must set before training (OmegaConf's notation for a
#: mandatory value): ``model.pose_init`` in the paper presets, whose PEB is pre-trained on LIP.
REQUIRED = "???"


def check_device(dev: str) -> None:
    """A ``device`` value: auto, cpu, cuda or cuda:N (``ValueError`` otherwise)."""
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ValueError(f"device must be {DEVICES_HINT}, got {dev!r}")


def validate(cfg: TrainConfig) -> None:
    """Value checks across sections (raises ``ValueError``); the section classes check their own."""
    from vireid.data import registry

    if cfg.dataset not in registry.reid_names():
        raise ValueError(f"dataset must be one of {', '.join(repr(n) for n in registry.reid_names())}, "
                         f"got {cfg.dataset!r}")
    if cfg.grad_every < 0:
        raise ValueError(f"grad_every must be >= 0 (0: off), got {cfg.grad_every}")
    for name in ("epochs", "log_every", "val_every"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    check_device(cfg.device)
    o = cfg.optim
    if o.lr <= 0 or o.momentum < 0 or o.weight_decay < 0 or o.stem_lr_factor < 0:
        raise ValueError("optim.lr must be > 0 and optim.momentum, weight_decay, stem_lr_factor >= 0")
    if o.nesterov and o.momentum <= 0:
        raise ValueError("optim.nesterov needs optim.momentum > 0")
    if o.schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule must be one of {SCHEDULES}, got {o.schedule!r}")
    if o.schedule == "step" and (o.step_size < 1 or o.gamma <= 0):
        raise ValueError("optim.step_size must be >= 1 and optim.gamma > 0")
    if o.schedule == "milestones":
        if len(o.factors) != len(o.milestones) + 1:
            raise ValueError(f"optim.factors needs one value more than optim.milestones (the factor before the "
                             f"first milestone): {len(o.factors)} factors, {len(o.milestones)} milestones")
        if any(b <= a for a, b in zip(o.milestones, o.milestones[1:])) or any(m < 1 for m in o.milestones):
            raise ValueError(f"optim.milestones must be increasing epochs >= 1, got {o.milestones}")
        if any(f <= 0 for f in o.factors):
            raise ValueError(f"optim.factors must be > 0, got {o.factors}")
    if o.warmup_epochs < 0 or not 0 < o.warmup_start <= 1:
        raise ValueError("optim.warmup_epochs must be >= 0 and optim.warmup_start in (0, 1]")
    d = cfg.data
    if d.workers < 0 or d.val_batch_size < 1:
        raise ValueError("data.workers must be >= 0 and data.val_batch_size >= 1")
    if d.holdout not in (None, "val", "fraction"):
        raise ValueError(f"data.holdout must be null, 'val' or 'fraction', got {d.holdout!r}")
    if not 1 <= d.trial <= 10:
        raise ValueError(f"data.trial must be a RegDB trial 1..10, got {d.trial}")
    if d.damaged_rows not in ("stop", "skip"):
        raise ValueError(f"data.damaged_rows must be 'stop' or 'skip', got {d.damaged_rows!r}")
    if d.require_estimator not in (None,) + ESTIMATOR_NAMES:
        raise ValueError(f"data.require_estimator must be null or one of {', '.join(ESTIMATOR_NAMES)}, "
                         f"got {d.require_estimator!r}")
    d.transform_config()
    d.sampler_config()
    sp = cfg.speed
    if sp.amp not in AMP_VALUES:
        raise ValueError(f"speed.amp must be auto, bf16, bf16-native, fp16, true or false, got {sp.amp!r}")
    for name in ("channels_last", "pin_memory", "compile"):
        if getattr(sp, name) not in SWITCH_VALUES:
            raise ValueError(f"speed.{name} must be auto, true or false, got {getattr(sp, name)!r}")
    if not isinstance(sp.activation_checkpointing, bool):
        raise ValueError(f"speed.activation_checkpointing must be true or false, got {sp.activation_checkpointing!r}")
    if cfg.ddp.backend not in DDP_BACKENDS:
        raise ValueError(f"ddp.backend must be one of {', '.join(DDP_BACKENDS)}, got {cfg.ddp.backend!r}")
    if cfg.ddp.batch not in DDP_BATCH:
        raise ValueError(f"ddp.batch must be one of {', '.join(DDP_BATCH)}, got {cfg.ddp.batch!r}")
    if cfg.ddp.timeout_minutes <= 0:
        raise ValueError(f"ddp.timeout_minutes must be > 0, got {cfg.ddp.timeout_minutes}")
    if cfg.model.pose_init not in (None, REQUIRED) and not cfg.model.use_pose_branch:
        raise ValueError("model.pose_init needs model.use_pose_branch: true (it initialises the pose branch)")
    # what the data's input size must allow the model (the trainer builds its ModelConfig once,
    # with the number of classes the data gives)
    check_input_size(cfg.model, d.transform_config().geometry.input_size)
