"""Hierarchical Feature Constraint (paper Section III-D, eqs. 14-15): the teacher PCB_T."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class HierarchicalFeatureConstraint(nn.Module):
    """PCB_T: a global classifier whose predictions are the soft targets of every stripe head.

    Section III-D: "convolutional features of Pose Estimation branch and ReID branch are
    firstly concatenated along channel dimension and then transferred to feature vectors by
    Global Average Pooling", then a PCB model (FC + classifier) gives ``p_T`` (eq. 14).
    The text does not say whether the ReID features are taken before or after the pose mask
    (eq. 9); as in the release, the unmasked layer4 output ``F_id2`` is used, so the
    teacher's view of the ReID branch is independent of the mask it is compared against.
    FC: Linear(C_reid + C_pose -> 1024) + BatchNorm1d, then LeakyReLU(0.1) and the
    classifier (the release's teacher head; ``leaky_slope``).

    ``forward(reid_features [B, C4, h, w], pose_features [B, C4, h, w]) -> logits [B, N]``.
    The KD loss (:func:`vireid.losses.kd_loss`) turns them into soft targets.
    """

    def __init__(self, reid_channels: int, pose_channels: int, num_classes: int, embed_dim: int = 1024,
                 leaky_slope: float = 0.1) -> None:
        super().__init__()
        if min(reid_channels, pose_channels, num_classes, embed_dim) < 1:
            raise ValueError("HierarchicalFeatureConstraint: all sizes must be >= 1")
        self.embed = nn.Sequential(
            nn.Linear(reid_channels + pose_channels, embed_dim),
            nn.BatchNorm1d(embed_dim),
            nn.LeakyReLU(leaky_slope, inplace=True),
        )
        self.classifier = nn.Linear(embed_dim, num_classes)

    def forward(self, reid_features: Tensor, pose_features: Tensor) -> Tensor:
        if reid_features.shape[-2:] != pose_features.shape[-2:]:
            raise ValueError(
                f"branch features differ in resolution: {tuple(reid_features.shape)} vs "
                f"{tuple(pose_features.shape)}"
            )
        x = torch.cat([reid_features, pose_features], dim=1)  # [B, C4 + C4, h, w]
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)  # [B, 2*C4]
        return self.classifier(self.embed(x))  # [B, N]
