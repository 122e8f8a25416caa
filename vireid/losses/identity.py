"""Identity loss (paper eq. 17)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .precision import float32_loss


@float32_loss
def identity_loss(stripe_logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy on every stripe head, summed over the heads, averaged over the batch.

    Eq. 17 is ``-(1/M) sum_i sum_j (log p_Pj^i + log p_IDj^i)``: the 1/M stands outside and
    the stripe heads are summed, so each head's batch-mean cross-entropy is added up. Call it
    once per branch and add the results (the network's two branches).

    Args:
        stripe_logits: ``[B, P, num_classes]`` logits of the P stripe classifiers.
        labels: ``[B]`` identity indices in ``[0, num_classes)``.
        label_smoothing: passed to ``cross_entropy`` (the paper uses none: 0).
    """
    if stripe_logits.dim() != 3:
        raise ValueError(f"stripe_logits must be [B, P, N], got {tuple(stripe_logits.shape)}")
    b, p, n = stripe_logits.shape
    if labels.shape != (b,):
        raise ValueError(f"labels must be [{b}], got {tuple(labels.shape)}")
    # [B, P, N] -> [B*P, N]: mean over B*P, times P = sum over heads of per-head means.
    ce = F.cross_entropy(
        stripe_logits.reshape(b * p, n),
        labels.repeat_interleave(p),
        label_smoothing=label_smoothing,
    )
    return ce * p
