"""Small configurations shared by the model tests (ResNet-18, 96x48 inputs)."""
from __future__ import annotations

import torch

from vireid.model import ModalitySpecificModule, ModelConfig, build_resnet

INPUT_HW = (96, 48)
NUM_CLASSES = 5


def small_config(preset: str = "full", **overrides) -> ModelConfig:
    return ModelConfig.ablation(
        preset, **{"backbone": "resnet18", "input_size": INPUT_HW, "num_classes": NUM_CLASSES, **overrides}
    )


def mixed_batch(seed: int = 0):
    """2 identities x 2 RGB x 2 IR, interleaved (not RGB-first) to exercise the routing."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(8, 3, *INPUT_HW, generator=g)
    modality = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    labels = torch.tensor([0, 0, 3, 3, 3, 0, 3, 0])
    return images, modality, labels


def distinct_stems(seed: int) -> ModalitySpecificModule:
    """A ResNet-18 modality-specific module whose IR stem differs from its RGB stem, in eval mode."""
    torch.manual_seed(seed)
    module = ModalitySpecificModule(build_resnet("resnet18"))
    with torch.no_grad():
        for p in module.ir.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return module.eval()
