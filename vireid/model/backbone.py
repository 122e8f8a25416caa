"""Helpers around torchvision ResNets (built with ``weights=None``; nothing downloads)."""
from __future__ import annotations

import logging
from typing import Callable, Dict

import torchvision
from torch import nn

logger = logging.getLogger(__name__)

_BUILDERS: Dict[str, Callable[..., torchvision.models.ResNet]] = {
    "resnet18": torchvision.models.resnet18,
    "resnet34": torchvision.models.resnet34,
    "resnet50": torchvision.models.resnet50,
    "resnet101": torchvision.models.resnet101,
    "resnet152": torchvision.models.resnet152,
}


def build_resnet(name: str) -> torchvision.models.ResNet:
    """A randomly initialised torchvision ResNet (``weights=None``)."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(_BUILDERS)}")
    return _BUILDERS[name](weights=None)


def layer_out_channels(layer: nn.Sequential) -> int:
    """Output channels of a ResNet stage (``layer1`` ... ``layer4``), read from its last block."""
    block = layer[-1]
    bn = getattr(block, "bn3", None) or getattr(block, "bn2", None)
    if not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(f"cannot read the output channels of {type(block).__name__}")
    return bn.num_features


def set_stage_stride(layer: nn.Sequential, stride: int) -> None:
    """Set the stride of a ResNet stage's first block (its strided conv and its downsample)."""
    first = layer[0]
    for module in first.modules():
        if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
            module.stride = (stride, stride)
