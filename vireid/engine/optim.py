"""SGD with the network's parameter groups and the epoch-wise learning-rate schedules."""
from __future__ import annotations

import logging
from typing import Dict, List

import torch
from torch import nn

from vireid.engine.config import OptimConfig

logger = logging.getLogger(__name__)


def lr_factor(config: OptimConfig, epoch: int) -> float:
    """Multiplier of the base lr during ``epoch`` (0-based).

    ``step``: ``gamma ** (epoch // step_size)`` (paper: 0.5 every 20 epochs).
    ``milestones``: ``factors[i]``, ``i`` = number of milestones <= ``epoch`` (release).
    Warm-up: times ``warmup_start + (1 - warmup_start) * epoch / warmup_epochs`` while
    ``epoch < warmup_epochs``.
    """
    if config.schedule == "step":
        factor = config.gamma ** (epoch // config.step_size)
    else:
        reached = sum(1 for m in config.milestones if epoch >= m)
        factor = config.factors[reached]
    if epoch < config.warmup_epochs:
        factor *= config.warmup_start + (1.0 - config.warmup_start) * epoch / config.warmup_epochs
    return float(factor)


class EpochSchedule:
    """Picklable ``epoch -> factor`` callable for :class:`torch.optim.lr_scheduler.LambdaLR`."""

    def __init__(self, config: OptimConfig) -> None:
        self.config = config

    def __call__(self, epoch: int) -> float:
        return lr_factor(self.config, epoch)


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.SGD:
    """SGD over two groups: the modality-specific stems at ``stem_lr_factor`` x lr, the rest at lr.

    Weight decay applies to every parameter (paper: "SGD with a weight decay of 0.0005").
    """
    groups: Dict[str, List[nn.Parameter]] = model.parameter_groups()  # type: ignore[operator]
    params = [
        {"params": groups["modality_specific"], "lr": config.lr * config.stem_lr_factor, "name": "modality_specific"},
        {"params": groups["rest"], "lr": config.lr, "name": "rest"},
    ]
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                           nesterov=config.nesterov)


def build_scheduler(optimizer: torch.optim.Optimizer, config: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Epoch-wise schedule: call ``step()`` once after each epoch."""
    schedule = EpochSchedule(config)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, [schedule] * len(optimizer.param_groups))
