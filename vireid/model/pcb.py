"""PCB heads (paper eqs. 10-13): horizontal stripes, one embedding + classifier per stripe."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PCBOutput(NamedTuple):
    embeddings: Tensor  # [B, P, E]: f_i of eq. 11 (FC + BN output, before the activation)
    logits: Tensor  # [B, P, num_classes]


class StripeHead(nn.Module):
    """One "PCB model" of Fig. 2: FC (C -> E) + BatchNorm1d, then LeakyReLU + a classifier.

    The FC reduces 2048-dim stripe vectors to 512-dim (Section III-C); BN follows the
    release. The FC + BN output is the fine-grained part feature f_i of eq. 11: the
    hetero-center triplet loss (eqs. 18-20) and the test features (eqs. 12-13) use it (the
    release feeds its triplet-style term 5 x f_i / ||f_i||: ``loss.hctri_feature: l2x5``). The
    LeakyReLU(0.1) sits on the classifier's path only, as in the release (which also
    L2-normalises the pre-activation output for testing): ``logits = W * LeakyReLU(f_i)``.
    """

    def __init__(self, in_channels: int, embed_dim: int, num_classes: int, leaky_slope: float = 0.1) -> None:
        super().__init__()
        self.embed = nn.Sequential(
            nn.Linear(in_channels, embed_dim),
            nn.BatchNorm1d(embed_dim),
        )
        self.activation = nn.LeakyReLU(leaky_slope)  # not in place: the embedding is returned
        self.classifier = nn.Linear(embed_dim, num_classes)

    def forward(self, x: Tensor) -> PCBOutput:
        emb = self.embed(x)  # [B, C] -> [B, E], f_i of eq. 11
        return PCBOutput(emb, self.classifier(self.activation(emb)))


def stripe_pool(features: Tensor, num_stripes: int) -> Tensor:
    """Eq. 10: split ``[B, C, H, W]`` into P horizontal stripes and average each -> ``[B, P, C]``."""
    if features.shape[-2] < num_stripes:
        raise ValueError(
            f"feature maps of height {features.shape[-2]} cannot be split into {num_stripes} stripes"
        )
    if features.shape[-2] % num_stripes and torch.onnx.is_in_onnx_export():
        # ONNX has no adaptive pooling with overlapping bins: the same bins as slices
        return stripe_pool_sliced(features, num_stripes)
    pooled = F.adaptive_avg_pool2d(features, (num_stripes, 1))  # [B, C, P, 1]
    return pooled.flatten(2).transpose(1, 2)  # [B, P, C]


def stripe_pool_sliced(features: Tensor, num_stripes: int) -> Tensor:
    """:func:`stripe_pool` by explicit slices: stripe i averages rows ``floor(i H / P)`` to
    ``ceil((i + 1) H / P)`` (exclusive), adaptive average pooling's bins."""
    h = int(features.shape[-2])
    bins = [((i * h) // num_stripes, -((-(i + 1) * h) // num_stripes)) for i in range(num_stripes)]
    return torch.stack([features[:, :, lo:hi].mean(dim=(2, 3)) for lo, hi in bins], 1)  # [B, P, C]


class PCBHead(nn.Module):
    """P stripe heads on one branch's feature maps (eqs. 10-11).

    ``forward(features [B, C, H, W]) -> PCBOutput(embeddings [B, P, E], logits [B, P, N])``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        num_stripes: int = 6,
        embed_dim: int = 512,
        leaky_slope: float = 0.1,
    ) -> None:
        super().__init__()
        if min(in_channels, num_classes, num_stripes, embed_dim) < 1:
            raise ValueError("PCBHead: in_channels, num_classes, num_stripes and embed_dim must be >= 1")
        self.num_stripes = num_stripes
        self.embed_dim = embed_dim
        self.stripes = nn.ModuleList(
            StripeHead(in_channels, embed_dim, num_classes, leaky_slope) for _ in range(num_stripes)
        )

    def forward(self, features: Tensor) -> PCBOutput:
        pooled = stripe_pool(features, self.num_stripes)  # [B, P, C]
        outs = [head(pooled[:, i]) for i, head in enumerate(self.stripes)]
        return PCBOutput(
            torch.stack([o.embeddings for o in outs], 1),  # [B, P, E]
            torch.stack([o.logits for o in outs], 1),  # [B, P, N]
        )


def concat_normalized(embeddings: Tensor) -> Tensor:
    """Test-time feature of eqs. 12-13: L2-normalise each stripe, concatenate: ``[B, P*E]``."""
    return F.normalize(embeddings, dim=-1).flatten(1)
