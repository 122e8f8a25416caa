"""Modality-shared module: Conv Block3 of Fig. 2 (paper eq. 1, ``theta^3``)."""
from __future__ import annotations

import copy

import torchvision
from torch import Tensor, nn

from .backbone import layer_out_channels


class ModalitySharedModule(nn.Module):
    """ResNet ``layer2`` shared by both modalities: ``F_S = ConvB3([F_RGB, F_IR]_b)``."""

    def __init__(self, resnet: torchvision.models.ResNet) -> None:
        super().__init__()
        self.layer2 = copy.deepcopy(resnet.layer2)
        self.out_channels = layer_out_channels(self.layer2)

    def forward(self, x: Tensor) -> Tensor:
        return self.layer2(x)  # [B, C1, H/4, W/4] -> [B, C2, H/8, W/8]
