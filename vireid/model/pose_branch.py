"""Pose Estimation branch of Fig. 2 (paper eqs. 2-7).

Layers (channel numbers from the release, resolutions at a 288x144 input)::

    F_S   [B, C2, 36, 18]  --Conv1 (3x3, BN, ReLU)------------------> F_p1 [B, 256, 36, 18]   (eq. 2)
    F_p1  --DConv2 (3x3 transposed, stride 2, BN, ReLU)-------------> F_p2 [B, 128, 72, 36]   (eq. 2)
    F_p2  --3x3 conv------------------------------------------------> H0   [B, 17, 72, 36]   initial heatmaps
    [F_p2, H0]  --Refinement Module (GCCPM refinement stage)--------> F_R  [B, 128, 72, 36],
                                                                     Ĥ    [B, 1|16, 72, 36] (eqs. 3-4)
    F_R   --Conv3 (3x3 stride 2, BN, ReLU)---------------------------> F_R' [B, 256, 36, 18]   (eq. 5)
    F_R' + F_p1 --Conv Block6 (3x3 stride 2 + BN + ReLU, 1x1 + BN)--> F_P  [B, C4, 18, 9]     (eq. 6)
    M = sigmoid(F_P)                                                                         (eq. 7)

Readings of the text:

* Conv1 and DConv2 are "3x3" layers (eq. 2), DConv2 a transposed conv with stride 2 that
  doubles the resolution (kernel 3, padding 1, output padding 1), each followed by BN and
  ReLU (the text mentions ReLU; BN as in the release).
* Section III-B says "all convolutional layers are followed by a ReLU", but a ReLU after
  Conv Block6's last (1x1) conv would confine the mask ``sigmoid(F_P)`` to [0.5, 1); as in
  the release, that conv is followed by BN only. F_P (before the sigmoid) is also what the
  pose branch's PCB heads see ("convolutional features F_P", Section III-C).
* The Refinement Module is GCCPM's refinement stage ([34]), imported from
  :mod:`vireid.pose.gccpm`; its input is the concatenation of F_p2 and the initial heatmaps,
  as a GCCPM stage takes [trunk features, previous heatmaps]. With 17 initial maps (16
  joints + background, ``initial_heatmap_channels``) the input has GCCPM's 145 channels.
  The initial heatmaps are an internal layer: the pose loss (eq. 16) supervises Ĥ only.
"""
from __future__ import annotations

import logging
from typing import NamedTuple

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)


def _refinement_stage_cls() -> type:
    try:
        from vireid.pose.gccpm import RefinementStage
    except ImportError as exc:  # pragma: no cover - depends on the other module being present
        raise ImportError(
            "the Pose Estimation branch needs vireid.pose.gccpm.RefinementStage (GCCPM's "
            "refinement stage, the paper's Refinement Module)"
        ) from exc
    return RefinementStage


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class PoseBranchOutput(NamedTuple):
    features: Tensor  # F_P [B, C4, H/16, W/16], before the sigmoid
    heatmaps: Tensor  # Ĥ [B, heatmap_channels, H/4, W/4]


class PoseEstimationBranch(nn.Module):
    """Eqs. 2-6: from the modality-shared features F_S to F_P and the heatmaps Ĥ.

    Args:
        in_channels: channels of F_S (the modality-shared module's output).
        out_channels: channels of the ReID features the mask multiplies (layer4's output).
        mid_channels: output channels of Conv Block6's 3x3 stride-2 conv.
        pose_channels: channels of F_p1 and of Conv3's output (256).
        deconv_channels: channels of F_p2 (128).
        initial_heatmap_channels: maps of the initial heatmap conv (17).
        refine_channels: channels of F_R (128).
        heatmap_channels: predicted maps: 1 (merged) or 16 (per joint).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: int,
        pose_channels: int = 256,
        deconv_channels: int = 128,
        initial_heatmap_channels: int = 17,
        refine_channels: int = 128,
        heatmap_channels: int = 1,
    ) -> None:
        super().__init__()
        for name, value in locals().items():
            if name not in ("self", "__class__") and isinstance(value, int) and value < 1:
                raise ValueError(f"PoseEstimationBranch: {name} must be >= 1, got {value}")
        refinement_cls = _refinement_stage_cls()
        self.heatmap_channels = heatmap_channels
        self.out_channels = out_channels
        self.conv1 = conv_bn_relu(in_channels, pose_channels)  # eq. 2: F_p1
        self.dconv2 = nn.Sequential(  # eq. 2: F_p2
            nn.ConvTranspose2d(pose_channels, deconv_channels, 3, stride=2, padding=1,
                               output_padding=1, bias=False),
            nn.BatchNorm2d(deconv_channels),
            nn.ReLU(inplace=True),
        )
        self.initial_heatmaps = nn.Conv2d(deconv_channels, initial_heatmap_channels, 3, padding=1)
        self.refinement = refinement_cls(  # eqs. 3-4
            deconv_channels + initial_heatmap_channels, refine_channels, heatmap_channels
        )
        self.conv3 = conv_bn_relu(refine_channels, pose_channels, stride=2)  # eq. 5
        self.conv_block6 = nn.Sequential(  # eq. 6
            conv_bn_relu(pose_channels, mid_channels, stride=2),
            nn.Conv2d(mid_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, f_s: Tensor) -> PoseBranchOutput:
        f_p1 = self.conv1(f_s)  # [B, 256, h, w] with h, w = H/8, W/8
        f_p2 = self.dconv2(f_p1)  # [B, 128, 2h, 2w]
        h0 = self.initial_heatmaps(f_p2)  # [B, 17, 2h, 2w]
        f_r, heatmaps = self.refinement.forward_with_features(
            torch.cat([f_p2, h0], dim=1)  # [B, 145, 2h, 2w]
        )  # F_R [B, 128, 2h, 2w], Ĥ [B, C, 2h, 2w]
        f_r2 = self.conv3(f_r)  # [B, 256, h, w]
        if f_r2.shape[-2:] != f_p1.shape[-2:]:
            raise RuntimeError(f"Conv3 output {tuple(f_r2.shape)} does not match F_p1 {tuple(f_p1.shape)}")
        f_p = self.conv_block6(f_r2 + f_p1)  # [B, C4, ceil(h/2), ceil(w/2)]
        return PoseBranchOutput(f_p, heatmaps)

