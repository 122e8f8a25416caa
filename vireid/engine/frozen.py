"""Parameters a training configuration leaves without a gradient, frozen before training.

:class:`~torch.nn.parallel.DistributedDataParallel` all-reduces every trainable parameter's
gradient each step and, without ``find_unused_parameters``, waits for all of them: a
parameter no loss reaches stops the second step with "Expected to have finished reduction
in the prior iteration". ``find_unused_parameters=True`` would cure it by traversing the
autograd graph after every forward; instead the parameters the configuration leaves out are
known from the configuration and frozen (``requires_grad = False``) before the optimizer and
DDP see them. In one process this changes nothing (such a parameter never has a gradient,
and SGD skips it, weight decay included); the same rule applies there so that one and N
processes train the same parameters.

Unreached by construction (the model keeps them so that checkpoints and the LIP weights
keep one layout, and validation still scores the predicted heatmaps):

* ``pose_branch.refinement.heatmaps.*``: the Refinement Module's heatmap head (eq. 4) when
  ``model.use_pose_loss`` is off (Table IV's "+ PEB" row): only eq. 16 supervises Ĥ, the
  branch goes on from the module's features F_R;
* ``hfc.*``: the teacher PCB_T (eqs. 14-15) with ``loss.detach_teacher``: its only loss is
  the KD term, whose gradient the detach stops.

:func:`check_gradients` verifies the rule once, after the first backward pass, so a model
change that leaves another parameter unreached fails at step 1 naming it, not at step 2
with DDP's message.
"""
from __future__ import annotations

import logging
from typing import List

from torch import nn

from vireid.engine.errors import TrainError
from vireid.losses import LossConfig

logger = logging.getLogger(__name__)


def unused_parameters(model: nn.Module, loss_cfg: LossConfig) -> List[str]:
    """Names (as in ``model.named_parameters()``) of the parameters no loss term reaches
    under ``model.config`` and ``loss_cfg`` (module docstring)."""
    prefixes = []
    branch = getattr(model, "pose_branch", None)
    if branch is not None and not model.config.use_pose_loss:
        prefixes.append("pose_branch.refinement.heatmaps.")
    if getattr(model, "hfc", None) is not None and loss_cfg.detach_teacher:
        prefixes.append("hfc.")
    return [name for name, _ in model.named_parameters() if name.startswith(tuple(prefixes))]


def freeze_unused(model: nn.Module, loss_cfg: LossConfig) -> List[str]:
    """Set ``requires_grad = False`` on :func:`unused_parameters`; returns their names."""
    names = unused_parameters(model, loss_cfg)
    params = dict(model.named_parameters())
    for name in names:
        params[name].requires_grad_(False)
    if names:
        blocks = sorted({n.rsplit(".", 2)[0] if n.startswith("pose_branch") else n.split(".")[0] for n in names})
        logger.info("frozen, as no loss reaches them in this configuration: %s (%d tensors, %d values)",
                    ", ".join(blocks), len(names), sum(params[n].numel() for n in names))
    return names


def check_gradients(model: nn.Module) -> None:
    """After the first backward pass: every trainable parameter has a gradient, else
    :class:`TrainError` naming those without (:func:`unused_parameters` misses them)."""
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    if missing:
        raise TrainError(f"{len(missing)} trainable parameter(s) got no gradient in the first step: "
                         f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}; DDP would stop at the next "
                         "step. vireid.engine.frozen.unused_parameters must name them for this configuration")
