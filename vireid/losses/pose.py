"""Pose estimation loss (paper eq. 16).

Eq. 16: ``L_pose = (1/M) sum_i sum_{x,y} (H_i(x, y) - Ĥ_i(x, y))^2``, a pixel-wise squared
error between the target heatmap (from the LIP-pretrained estimator, cached offline) and the
predicted one.

Normalisation (``normalization``):

* ``'mean'`` (default): the sum of weighted squared errors divided by ``B * C * H * W``,
  i.e. plain mean squared error when every weight is 1 — what the public release computes
  and the scale its pose weights (3 / 7, paper: lambda = 5) were chosen for. Summed over
  pixels, eq. 16 as written would be ``H * W`` (2592 at 72x36) times larger, which with
  lambda = 5 would swamp the identity loss; we read the sum in eq. 16 as notation.
* ``'sum'``: eq. 16 literally — summed over channels and pixels, divided by the batch size.
* ``'relative'``: eq. 16's per-image sum divided by that image's target energy
  ``sum_{x,y} H_i(x, y)^2`` (over the kept joints' maps), then averaged over the images
  that have a target: a relative squared error, 1 for an all-zero prediction and 0 for a
  perfect one, whatever the heatmap resolution, the number of maps or the Gaussian's
  width. ``'mean'`` divides by every pixel, nearly all of them background, so the term is
  tiny and predicting zeros is nearly optimal; ``'sum'`` grows with the resolution.
  Measured on the demo (``benchmarks/pose_share.py``, docs/model.md, "Which reading of eq. 16"):
  see docs/model.md for the gradient shares that chose it for the demo preset.

Joint confidences: targets are given per joint, ``[B, J, H, W]`` with ``J = NUM_JOINTS``
(16), each joint's map a Gaussian of peak 1 as cached, with ``joint_weights`` ``[B, J]``: the
estimator's confidences in [0, 1] (0 = joint missing / not detected). A confidence is used
as a threshold, never as an amplitude: a joint counts, at full strength, when its
confidence is above ``min_confidence`` (default 0: every joint the estimator reported), and
not at all otherwise. Scaling the maps by the confidence instead would make a target's
peak the confidence and its energy fall with the confidence's square, teaching the branch
to predict faint blobs wherever the estimator was unsure.

* Per-joint mode (the network predicts J maps): each joint's squared error counts when the
  joint is kept (weight 1), and not at all otherwise.
* Merged mode (the network predicts 1 map; default, eq. 16 and the release): the target is
  the max over the kept joints' maps, so its peaks stay 1 — a dropped joint's region reads
  as background, like any other pixel without a joint. A sample with no kept joint (no
  pose at all) is left out entirely.

Targets that are already merged (``[B, 1, H, W]``) are accepted with ``joint_weights``
``None`` or ``[B]`` / ``[B, 1]`` (per-sample weights, used as given).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .precision import float32_loss

_NORMALIZATIONS = ("mean", "sum", "relative")


def joint_mask(joint_weights: Tensor, min_confidence: float = 0.0) -> Tensor:
    """``[B, J]`` confidences -> ``[B, J]`` 0/1 mask (same dtype): 1 where above ``min_confidence``."""
    if not 0.0 <= min_confidence < 1.0:
        raise ValueError(f"min_confidence must be in [0, 1), got {min_confidence}")
    return (joint_weights > min_confidence).to(joint_weights.dtype)


def merge_joint_heatmaps(heatmaps: Tensor, joint_weights: Optional[Tensor] = None,
                         min_confidence: float = 0.0) -> Tensor:
    """Merge ``[B, J, H, W]`` joint maps into ``[B, 1, H, W]`` by a max over the joints whose
    confidence is above ``min_confidence`` (all joints when ``joint_weights`` is None)."""
    if heatmaps.dim() != 4:
        raise ValueError(f"heatmaps must be [B, J, H, W], got {tuple(heatmaps.shape)}")
    if joint_weights is not None:
        if joint_weights.shape != heatmaps.shape[:2]:
            raise ValueError(
                f"joint_weights {tuple(joint_weights.shape)} must be {tuple(heatmaps.shape[:2])}"
            )
        heatmaps = heatmaps * joint_mask(joint_weights, min_confidence)[:, :, None, None].to(heatmaps.dtype)
    return heatmaps.amax(dim=1, keepdim=True)


@float32_loss
def pose_loss(
    pred: Tensor,
    target: Tensor,
    joint_weights: Optional[Tensor] = None,
    normalization: str = "mean",
    min_confidence: float = 0.0,
) -> Tensor:
    """Pixel-wise squared error between predicted and target heatmaps (eq. 16).

    Args:
        pred: ``[B, C, H, W]`` predicted heatmaps, ``C`` = 1 (merged) or J (per joint).
        target: ``[B, J, H, W]`` per-joint targets, or ``[B, 1, H, W]`` merged targets.
        joint_weights: ``[B, J]`` per-joint confidences for per-joint targets (a joint is
            kept when above ``min_confidence``); for merged targets ``[B]`` or ``[B, 1]``
            per-sample weights. ``None`` = all kept.
        normalization: ``'mean'`` (divide by B*C*H*W), ``'sum'`` (divide by B) or
            ``'relative'`` (each image's error over its target energy, averaged).
        min_confidence: confidence threshold of a kept joint (see the module docstring).
    """
    if normalization not in _NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {_NORMALIZATIONS}, got {normalization!r}")
    if pred.dim() != 4 or target.dim() != 4:
        raise ValueError(f"pred and target must be 4-D, got {tuple(pred.shape)} and {tuple(target.shape)}")
    b, c, h, w = pred.shape
    if target.shape[0] != b or target.shape[2:] != (h, w):
        raise ValueError(
            f"target heatmaps {tuple(target.shape)} do not match the predicted {tuple(pred.shape)} "
            "(batch and resolution must agree; vireid-train checks the cache's maps at start-up)"
        )
    target = target.to(pred.dtype)
    j = target.shape[1]
    if c == j:
        # Per-channel weights: [B, C]
        if joint_weights is None:
            weights = pred.new_ones(b, c)
        elif c == 1 and joint_weights.shape in ((b,), (b, 1)):
            weights = joint_weights.reshape(b, 1).to(pred.dtype)
        elif joint_weights.shape == (b, c):
            weights = joint_mask(joint_weights, min_confidence).to(pred.dtype)
        else:
            raise ValueError(f"joint_weights {tuple(joint_weights.shape)} must be [{b}, {c}]")
    elif c == 1:
        # Merged prediction, per-joint targets: merge, weight each sample by "has any joint".
        target = merge_joint_heatmaps(target, joint_weights, min_confidence)
        if joint_weights is None:
            weights = pred.new_ones(b, 1)
        else:
            weights = joint_mask(joint_weights, min_confidence).amax(dim=1, keepdim=True).to(pred.dtype)
    else:
        raise ValueError(f"cannot compare {c} predicted maps with {j} target maps")
    sq = (pred - target) ** 2 * weights[:, :, None, None]  # [B, C, H, W]
    if normalization == "relative":
        energy = (target ** 2 * weights[:, :, None, None]).sum(dim=(1, 2, 3))  # [B]
        has = energy > 0                                          # images without a target give no signal
        per_image = sq.sum(dim=(1, 2, 3)) / torch.where(has, energy, 1.0)   # [B] relative squared error
        # the mean over the images with a target (0 when none), read nothing back from the device
        return torch.where(has, per_image, 0.0).sum() / has.sum().clamp_min(1).to(per_image.dtype)
    denom = b * c * h * w if normalization == "mean" else b
    return sq.sum() / denom
