"""GCCPM's training loss (intermediate supervision of every stage), its Adam parameter groups
and its plateau schedule (or a warm-up + cosine one for short runs), for ``vireid-prep
train-estimator``."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Protocol, Sequence, Tuple

if TYPE_CHECKING:   # torch is imported where it is used, so `vireid-prep --help` stays quick
    import torch
    from torch import Tensor, nn

    from vireid.pose.gccpm import GCCPM


class EstimatorOptimSettings(Protocol):
    """The settings :func:`build_estimator_optimizer` reads (``EstimatorTrainConfig`` of
    :mod:`pipeline.train_estimator` has them): the optimiser does not import its trainer."""

    lr: float
    weight_decay: float
    epochs: int
    schedule: str
    warmup_fraction: float
    plateau_factor: float
    plateau_patience: int
    plateau_threshold: float


def heatmap_loss(stages: Sequence[Tensor], target: Tensor, weights: Tensor) -> Tuple[Tensor, List[float]]:
    """Intermediate supervision: sum over stages of GCCPM's ``l2_loss`` with channel weights.

    Each stage ``(N, 17, h, w)``: ``sum(weights[n, c] * (stage - target)^2) / 2 / N``.
    Returns the total and each stage's value.
    """
    n = target.shape[0]
    w = weights[:, :, None, None]
    per_stage = [((s - target) ** 2 * w).sum() / 2.0 / n for s in stages]
    total = per_stage[0]
    for s in per_stage[1:]:
        total = total + s
    return total, [float(s.detach()) for s in per_stage]


def _params(module: nn.Module, kind: str, name: str) -> List[nn.Parameter]:
    """Parameters called ``name`` of ``module``'s sub-modules of ``kind``: 'conv' (ordinary
    Conv2d), 'dw' (depthwise Conv2d) or 'bn' (BatchNorm2d)."""
    from torch import nn

    out = []
    for m in module.modules():
        if kind == "conv":
            ok = isinstance(m, nn.Conv2d) and m.groups == 1
        elif kind == "dw":
            ok = isinstance(m, nn.Conv2d) and m.groups == m.in_channels == m.out_channels and m.groups > 1
        else:
            ok = isinstance(m, nn.BatchNorm2d)
        if ok and getattr(m, name, None) is not None:
            out.append(getattr(m, name))
    return out


def gccpm_param_groups(model: GCCPM, lr: float) -> List[Dict[str, Any]]:
    """GCCPM's Adam parameter groups (``train.py``): (parameters, lr multiplier, weight decay or not).

    ============================  ======  ============
    parameters                    lr      weight decay
    ============================  ======  ============
    backbone conv weights         1x      yes
    backbone depthwise / BN w.    1x      no
    backbone BN biases            2x      no
    cpm, initial conv weights     1x      yes
    cpm, initial conv biases      2x      no
    initial BN weights            1x      no
    initial BN biases             2x      no
    refinement conv weights       4x      yes
    refinement conv biases        8x      no
    refinement BN weights         1x      no
    refinement BN biases          2x      no
    ============================  ======  ============

    As in GCCPM's ``train.py``, the cpm block's BatchNorm parameters are in no group,
    so they keep their initial (or ``--init``) values (its list of groups omits them;
    their running statistics are still updated).
    """
    spec = [
        (model.model, "conv", "weight", 1, True), (model.model, "dw", "weight", 1, False),
        (model.model, "bn", "weight", 1, False), (model.model, "bn", "bias", 2, False),
        (model.cpm, "conv", "weight", 1, True), (model.cpm, "conv", "bias", 2, False),
        (model.cpm, "dw", "weight", 1, False),
        (model.initial_stage, "conv", "weight", 1, True), (model.initial_stage, "conv", "bias", 2, False),
        (model.initial_stage, "bn", "weight", 1, False), (model.initial_stage, "bn", "bias", 2, False),
        (model.refinement_stages, "conv", "weight", 4, True), (model.refinement_stages, "conv", "bias", 8, False),
        (model.refinement_stages, "bn", "weight", 1, False), (model.refinement_stages, "bn", "bias", 2, False),
    ]
    groups = []
    for module, kind, name, mult, decay in spec:
        params = _params(module, kind, name)
        if params:
            group: Dict[str, Any] = {"params": params, "lr": lr * mult}
            if not decay:
                group["weight_decay"] = 0.0
            groups.append(group)
    return groups


#: the learning-rate schedules of ``--schedule``
ESTIMATOR_SCHEDULES = ("plateau", "cosine")


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """The lr factor after ``step`` updates: linear from ``1/warmup_steps`` to 1 over the first
    ``warmup_steps`` updates, then half a cosine from 1 to 0 at ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup_steps) / span)))
    return factor


def build_estimator_optimizer(model: GCCPM, cfg: EstimatorOptimSettings,
                              steps_per_epoch: int) -> Tuple[torch.optim.Adam, Any]:
    """Adam over :func:`gccpm_param_groups` and the schedule ``cfg.schedule``: GCCPM's plateau
    scheduler (stepped after each epoch on ``100 - val PCKh``) or, for short runs, a warm-up over
    ``cfg.warmup_fraction`` of all ``cfg.epochs * steps_per_epoch`` updates and a cosine decay to 0
    (stepped after every update; :func:`warmup_cosine`)."""
    import torch

    opt = torch.optim.Adam(gccpm_param_groups(model, cfg.lr), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "cosine":
        total = cfg.epochs * steps_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, warmup_cosine(total, max(1, round(cfg.warmup_fraction * total))))
    else:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=cfg.plateau_factor,
                                                           patience=cfg.plateau_patience,
                                                           threshold=cfg.plateau_threshold)
    return opt, sched
