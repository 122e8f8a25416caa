"""Activation checkpointing of the network's large stages (``speed.activation_checkpointing``).

A training step keeps every activation for the backward pass: at the paper's batch of 64
images at 288x144 that is about 10 GiB for the ResNet-50 stages and the Refinement Module,
which runs at H/4 x W/4. Recomputing each block's forward during the backward pass keeps
only the blocks' inputs (about half the peak; ``benchmarks/bench_recompute.py``) for
roughly one more forward pass of compute.

The result is the same computation: the recomputed forward uses the same inputs and
weights, and BatchNorm's running statistics, which the recomputed forward would update a
second time, are put back after it, so a step with recomputation leaves the same running
statistics as one without (``tests/model/test_recompute.py``).
"""
from __future__ import annotations

import contextlib
from typing import Iterator, List, Tuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


def _running_stats(module: nn.Module) -> List[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@contextlib.contextmanager
def _keep_running_stats(module: nn.Module) -> Iterator[None]:
    """Restore the BatchNorm buffers of ``module`` after the recomputed forward updated them."""
    norms = _running_stats(module)
    saved: List[Tuple[Tensor, ...]] = [
        tuple(b.clone() for b in (m.running_mean, m.running_var, m.num_batches_tracked)) for m in norms
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (mean, var, count) in zip(norms, saved):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)


class RecomputedSequential(nn.Sequential):
    """An ``nn.Sequential`` whose children are recomputed in the backward pass while training.

    It adds no parameters or buffers, so a state dict reads the same with or without it; in
    eval mode, or where no gradient is wanted, it is a plain ``nn.Sequential``.
    """

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if not (self.training and torch.is_grad_enabled()):
            return super().forward(x)
        for block in self:
            x = checkpoint(block, x, use_reentrant=False,
                           context_fn=lambda b=block: (contextlib.nullcontext(), _keep_running_stats(b)))
        return x


def stages_to_recompute(model: nn.Module) -> List[nn.Sequential]:
    """The stages whose blocks are recomputed: each stem's ``layer1``, the shared ``layer2``,
    the ReID branch's ``layer3`` / ``layer4`` and the Refinement Module's trunk (RM_F, eq. 3)."""
    stages: List[nn.Sequential] = []
    specific = getattr(model, "modality_specific", None)
    if specific is not None:
        stages.extend(stem.layer1 for stem in specific.children() if hasattr(stem, "layer1"))
    shared = getattr(model, "modality_shared", None)
    if shared is not None:
        stages.append(shared.layer2)
    reid = getattr(model, "reid_branch", None)
    if reid is not None:
        stages.extend([reid.layer3, reid.layer4])
    pose = getattr(model, "pose_branch", None)
    if pose is not None:
        stages.append(pose.refinement.trunk)
    return stages


def enable_activation_checkpointing(model: nn.Module) -> int:
    """Recompute the blocks of :func:`stages_to_recompute` in ``model``'s backward pass (in
    place; call before DDP wraps the model). Returns the number of blocks recomputed."""
    blocks = 0
    for stage in stages_to_recompute(model):
        if type(stage) is nn.Sequential:
            stage.__class__ = RecomputedSequential
        blocks += len(stage)
    return blocks
