"""Modality-specific module: Conv Block1-2 of Fig. 2 (paper eq. 1)."""
from __future__ import annotations

import copy
import logging
from typing import Optional, Sequence, Union

import torch
import torchvision
from torch import Tensor, nn

from vireid.data.modality import Modality

from .backbone import layer_out_channels

logger = logging.getLogger(__name__)

#: the modality codes as plain ints (the network's ``modality`` input)
RGB: int = int(Modality.RGB)
IR: int = int(Modality.IR)


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


def leading_rgb_count(modality: Union[Tensor, Sequence[int]]) -> Optional[int]:
    """The number of RGB samples when host-side ``modality`` flags are grouped RGB first, then IR
    (the layout of :class:`~vireid.inputs.sampler.CrossModalitySampler` batches); else None.

    Computed from the batch's CPU copy before it goes to the device, it lets
    :meth:`ModalitySpecificModule.forward` split the batch by slicing (``rgb_count``) without
    reading the device's flags back (a host-device synchronisation). A tensor that is not on
    the CPU gives None: reading it would be that synchronisation."""
    if isinstance(modality, Tensor):
        if modality.device.type != "cpu":
            return None
        modality = modality.tolist()
    flags = [int(v) for v in modality]
    n_rgb = flags.count(RGB)
    if flags != [RGB] * n_rgb + [IR] * (len(flags) - n_rgb):
        return None
    return n_rgb


class ModalitySpecificModule(nn.Module):
    """Two ResNet stems with separate weights, one per modality (eq. 1: ``theta^1_m, theta^2_m``).

    ``forward(images, modality)`` takes a batch mixing both modalities, with ``modality[b]``
    0 for RGB and 1 for IR; each part goes through its own stem (BatchNorm statistics are
    therefore per modality) and the results are put back in the batch's order. A modality
    absent from the batch is not run (its stem then gets no gradient). The output keeps the
    input's memory format (channels-last in, channels-last out).

    How many images each stem gets is a host-side number (the stems' batch shapes depend on
    it). Given ``rgb_count`` (:func:`leading_rgb_count` of the batch's CPU flags; the batch
    is then the first ``rgb_count`` images RGB, the rest IR), the split is two slices and
    nothing is read from the device. Without it the flags are read once (one host-device
    synchronisation: validity and the IR count together) and the batch is gathered into
    RGB-then-IR order and back.
    """

    def __init__(self, resnet: torchvision.models.ResNet) -> None:
        super().__init__()
        self.rgb = ModalityStem(resnet)
        self.ir = ModalityStem(resnet)
        self.out_channels = self.rgb.out_channels

    def forward(self, images: Tensor, modality: Tensor, rgb_count: Optional[int] = None) -> Tensor:
        if images.dim() != 4:
            raise ValueError(f"images must be [B, 3, H, W], got {tuple(images.shape)}")
        b = images.shape[0]
        modality = torch.as_tensor(modality, device=images.device)
        if modality.shape != (b,):
            raise ValueError(f"modality must be [{b}] (0 RGB, 1 IR), got shape {tuple(modality.shape)}")
        if rgb_count is not None:
            if not 0 <= int(rgb_count) <= b:
                raise ValueError(f"rgb_count must be in [0, {b}], got {rgb_count}")
            return self._grouped(images, int(rgb_count))
        is_ir = modality == IR
        bad, n_ir = torch.stack([(~((modality == RGB) | is_ir)).sum(), is_ir.sum()]).tolist()  # the one sync
        if bad:
            raise ValueError(f"modality values must be 0 (RGB) or 1 (IR), got {modality.unique().tolist()}")
        if n_ir in (0, b):                                    # one modality: no reordering
            return self._grouped(images, b - n_ir)
        order = torch.argsort(is_ir.to(torch.uint8), stable=True)       # RGB first, each in batch order
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(b, device=order.device)
        # advanced indexing keeps a channels-last input channels-last (index_select would not)
        return self._grouped(images[order], b - n_ir)[inverse]  # back in batch order

    def _grouped(self, images: Tensor, n_rgb: int) -> Tensor:
        """The first ``n_rgb`` images through the RGB stem, the rest through the IR stem."""
        parts = []
        if n_rgb:
            parts.append(self.rgb(images[:n_rgb]))
        if n_rgb < images.shape[0]:
            parts.append(self.ir(images[n_rgb:]))
        return parts[0] if len(parts) == 1 else torch.cat(parts, 0)  # [B, C1, H/4, W/4]
