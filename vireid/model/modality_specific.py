"""Modality-specific module: Conv Block1-2 of Fig. 2 (paper eq. 1)."""
from __future__ import annotations

import copy
import logging

import torch
import torchvision
from torch import Tensor, nn

from .backbone import layer_out_channels

logger = logging.getLogger(__name__)

RGB: int = 0
IR: int = 1


class ModalityStem(nn.Module):
    """layer0 (conv1, bn1, relu, maxpool) + layer1 of a ResNet, for one modality.

    Attribute names are torchvision's, so an ImageNet state dict maps onto it directly.
    """

    def __init__(self, resnet: torchvision.models.ResNet) -> None:
        super().__init__()
        self.conv1 = copy.deepcopy(resnet.conv1)
        self.bn1 = copy.deepcopy(resnet.bn1)
        self.relu = copy.deepcopy(resnet.relu)
        self.maxpool = copy.deepcopy(resnet.maxpool)
        self.layer1 = copy.deepcopy(resnet.layer1)
        self.out_channels = layer_out_channels(self.layer1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # [B, 3, H, W] -> [B, C0, H/4, W/4]
        return self.layer1(x)  # [B, C1, H/4, W/4]


class ModalitySpecificModule(nn.Module):
    """Two ResNet stems with separate weights, one per modality (eq. 1: ``theta^1_m, theta^2_m``).

    ``forward(images, modality)`` takes a batch mixing both modalities, with ``modality[b]``
    0 for RGB and 1 for IR; each part goes through its own stem (BatchNorm statistics are
    therefore per modality) and the results are put back in the batch's order. A modality
    absent from the batch is not run (its stem then gets no gradient).
    """

    def __init__(self, resnet: torchvision.models.ResNet) -> None:
        super().__init__()
        self.rgb = ModalityStem(resnet)
        self.ir = ModalityStem(resnet)
        self.out_channels = self.rgb.out_channels

    def forward(self, images: Tensor, modality: Tensor) -> Tensor:
        if images.dim() != 4:
            raise ValueError(f"images must be [B, 3, H, W], got {tuple(images.shape)}")
        b = images.shape[0]
        modality = torch.as_tensor(modality, device=images.device)
        if modality.shape != (b,):
            raise ValueError(f"modality must be [{b}] (0 RGB, 1 IR), got shape {tuple(modality.shape)}")
        is_ir = modality == IR
        if not bool(((modality == RGB) | is_ir).all()):
            raise ValueError(f"modality values must be 0 (RGB) or 1 (IR), got {modality.unique().tolist()}")
        idx_rgb = torch.nonzero(~is_ir, as_tuple=True)[0]
        idx_ir = torch.nonzero(is_ir, as_tuple=True)[0]
        parts, order = [], []
        if idx_rgb.numel():
            parts.append(self.rgb(images.index_select(0, idx_rgb)))
            order.append(idx_rgb)
        if idx_ir.numel():
            parts.append(self.ir(images.index_select(0, idx_ir)))
            order.append(idx_ir)
        out = torch.cat(parts, 0)  # [B, C1, H/4, W/4], grouped by modality
        perm = torch.cat(order)  # out[k] belongs to sample perm[k]
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(b, device=perm.device)
        return out.index_select(0, inverse)  # back in batch order
