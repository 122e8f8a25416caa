"""ReID branch: Conv Block4-5 of Fig. 2 (paper eq. 8)."""
from __future__ import annotations

import copy

import torchvision
from torch import Tensor, nn

from .backbone import layer_out_channels, set_stage_stride


class ReIDBranch(nn.Module):
    """ResNet ``layer3`` + ``layer4`` giving the identity features ``F_id2`` (eq. 8).

    ``layer4`` runs with ``last_stride`` (default 1, as in the release: 18x9 maps at
    288x144), so the maps are input / 16.
    """

    def __init__(self, resnet: torchvision.models.ResNet, last_stride: int = 1) -> None:
        super().__init__()
        self.layer3 = copy.deepcopy(resnet.layer3)
        self.layer4 = copy.deepcopy(resnet.layer4)
        set_stage_stride(self.layer4, last_stride)
        self.mid_channels = layer_out_channels(self.layer3)
        self.out_channels = layer_out_channels(self.layer4)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(x)  # [B, C2, H/8, W/8] -> [B, C3, H/16, W/16]
        return self.layer4(x)  # [B, C4, H/16, W/16] (last stride 1)
