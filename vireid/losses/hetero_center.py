"""Hetero-center triplet loss (paper eqs. 18-20, after Liu et al., the paper's ref. [32]).

For one stripe head: the batch's features are grouped by (identity, modality); each group's
mean is a *center* (eq. 18). For every center ``c`` of identity ``i`` in modality ``m``::

    hinge(c) = max(0, rho + ||c - c_{i, other m}||_2 - min_{j != i, m' in {RGB, IR}} ||c - c_{j, m'}||_2)

Eq. 19 sums these hinges over the ``2D`` centers of the batch (``D`` identities);
:class:`HeteroCenterTripletLoss` offers ``reduction='sum'`` for that literal reading and
``reduction='mean'`` (default), the average over the centers, which is what the reference
implementation computes (``/work/shared/golden/hctri_*.npz``; sum = 2D x mean). The default
follows the reference implementation because the paper's weight beta = 0.1 (eq. 21) was
set for the implementation it cites; with the paper's D = 8 the sum would be 16x larger.

Eq. 20 sums the per-stripe losses over the P stripe heads of both branches; passing a
``[B, P, d]`` tensor sums over its P stripes (one hetero-center loss per stripe).

The grouping uses labels and modality flags only, so the loss does not depend on the
order of samples or identities in the batch (no "RGB first" assumption). A center whose
identity is missing in the other modality has no positive term, and a center with no
other identity in the batch has no negative term: such centers are left out (and the
mean is taken over the remaining ones); a batch with none left gives a zero that still
carries a graph.

The loss has fixed shapes whatever the labels: each sample's group is named by its first
sample with the same (identity, modality) (a ``[B, B]`` comparison), every sample is a
*slot* and a slot is a center when it names its own group, so the centers of all P
stripes come from one ``index_add`` and their distances from one batched product, and
nothing is read back from the device (no ``unique``, ``bincount``, boolean indexing or
``bool()``: no host-device synchronisation in a training step).
"""
from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from .precision import float32_loss

logger = logging.getLogger(__name__)

_REDUCTIONS = ("mean", "sum")


def _euclidean(a: Tensor) -> Tensor:
    """Pairwise Euclidean distances ``[..., C, C]`` of ``a`` ``[..., C, d]``, with a gradient
    that is finite at 0."""
    sq = (a * a).sum(-1)
    d2 = sq[..., :, None] + sq[..., None, :] - 2.0 * a @ a.transpose(-1, -2)
    return d2.clamp_min(1e-12).sqrt()


class HeteroCenterTripletLoss(nn.Module):
    """Hetero-center triplet loss of eqs. 18-20 with margin ``rho`` (paper: 0.3).

    ``forward(feats, labels, modality)``: ``feats`` is ``[B, d]`` (one stripe head) or
    ``[B, P, d]`` (P stripe heads; the per-stripe losses are summed, eq. 20).
    """

    def __init__(self, margin: float = 0.3, reduction: str = "mean") -> None:
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.margin = float(margin)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"

    def _stripes(self, feats: Tensor, labels: Tensor, modality: Tensor) -> Tensor:
        """Eq. 19 for each stripe of ``feats`` ``[B, P, d]`` at once: ``[P]`` losses."""
        b, p, d = feats.shape
        slots = torch.arange(b, device=feats.device)
        same_id = labels[:, None] == labels[None, :]                              # [B, B]
        same_key = same_id & (modality[:, None] == modality[None, :])
        group = torch.where(same_key, slots[None, :], b).amin(1)                 # first sample of b's group
        is_center = group == slots                                               # [B]
        count = same_key.sum(1, dtype=feats.dtype)                               # group size of every slot
        sums = feats.new_zeros(b, p * d).index_add(0, group, feats.reshape(b, p * d))
        centers = (sums / count[:, None]).reshape(b, p, d).transpose(0, 1)     # [P, B, d]; 0 off the centers
        dist = _euclidean(centers)                                               # [P, B, B]
        both = is_center[:, None] & is_center[None, :]
        pos_mask = both & same_id & ~same_key                                    # at most one per row
        neg_mask = both & ~same_id
        valid = is_center & pos_mask.any(1) & neg_mask.any(1)                    # [B]
        d_pos = (dist * pos_mask).sum(-1)                                        # [P, B]
        d_neg = dist.masked_fill(~neg_mask, float("inf")).amin(-1)               # [P, B]
        hinge = torch.where(valid, torch.relu(self.margin + d_pos - d_neg), 0.0).sum(-1)   # [P]
        if self.reduction == "mean":
            hinge = hinge / valid.sum().clamp_min(1).to(hinge.dtype)
        return hinge

    @float32_loss
    def forward(self, feats: Tensor, labels: Tensor, modality: Tensor) -> Tensor:
        if feats.dim() not in (2, 3):
            raise ValueError(f"feats must be [B, d] or [B, P, d], got shape {tuple(feats.shape)}")
        b = feats.shape[0]
        if labels.shape != (b,) or modality.shape != (b,):
            raise ValueError(
                f"labels {tuple(labels.shape)} and modality {tuple(modality.shape)} must be [{b}]"
            )
        if feats.dim() == 2:
            return self._stripes(feats[:, None], labels, modality)[0]
        return self._stripes(feats, labels, modality).sum()
