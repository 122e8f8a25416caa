"""vireid.losses: the paper's training objective (eqs. 15-21).

* :func:`identity_loss` — eq. 17, cross-entropy on every stripe head.
* :class:`HeteroCenterTripletLoss` — eqs. 18-20.
* :func:`pose_loss` — eq. 16, with per-joint weights and the merged single-map mode.
* :func:`kd_loss` — eq. 15, KL(teacher || student) of the Hierarchical Feature Constraint.
* :class:`LossConfig`, :func:`compute_losses` — eq. 21; :func:`loss_terms` its terms one by one.

Each is computed in float32 under any autocast (:mod:`vireid.losses.precision`).
"""
from .hetero_center import HeteroCenterTripletLoss
from .identity import identity_loss
from .kd import kd_loss
from .pose import joint_mask, merge_joint_heatmaps, pose_loss
from .total import LossConfig, compute_losses, loss_terms

__all__ = [
    "HeteroCenterTripletLoss",
    "LossConfig",
    "compute_losses",
    "identity_loss",
    "kd_loss",
    "joint_mask",
    "loss_terms",
    "merge_joint_heatmaps",
    "pose_loss",
]
