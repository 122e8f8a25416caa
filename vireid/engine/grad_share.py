"""Which loss term drives the shared layers: per-term gradient norms (``grad_every``).

Every ``grad_every`` steps the trainer measures, for each weighted term of eq. 21
(``id``, ``beta * hctri``, ``lambda * pose``, ``gamma * kd``), the L2 norm of its gradient
on the parameters of each shared block:

* ``modality_shared``: layer2, which every term reaches (Fig. 2's modality-shared module);
* ``pose_conv1``: the Pose Estimation branch's first block (Conv1), the branch's entry
  from the shared features (absent without the PEB).

and each term's share, its norm divided by the sum of the terms' norms on that block. The
norms are taken of the weighted term, so a term switched off (weight 0, or absent from the
model) has norm and share 0. One extra backward pass per term on a measured step (the
training step itself is unchanged); in float32/bfloat16, not under fp16's loss scaling.
Under DDP each rank measures its own shard (rank 0's figures are logged).

Records: ``kind='grad'`` in ``log.jsonl`` with ``<block>/<term>`` norms and
``<block>/<term>_share`` shares (TensorBoard ``grad/...``); ``losses.png`` draws the shares.
"""
from __future__ import annotations

from typing import Dict, List, Mapping

import torch
from torch import Tensor, nn

from vireid.losses.total import TERMS, LossConfig, term_weights



def shared_blocks(model: nn.Module) -> Dict[str, List[nn.Parameter]]:
    """The blocks measured: ``modality_shared`` and, with the PEB, ``pose_conv1``."""
    blocks = {"modality_shared": [p for p in model.modality_shared.parameters() if p.requires_grad]}
    branch = getattr(model, "pose_branch", None)
    if branch is not None:
        blocks["pose_conv1"] = [p for p in branch.conv1.parameters() if p.requires_grad]
    return blocks


def weighted_terms(losses: Mapping[str, Tensor], loss_cfg: LossConfig) -> Dict[str, Tensor]:
    """Each present term of eq. 21 times its weight (``total`` excluded)."""
    weights = term_weights(loss_cfg)
    return {name: losses[name] * weights[name] for name in TERMS if name in losses}


def gradient_norms(terms: Mapping[str, Tensor], blocks: Mapping[str, List[nn.Parameter]]) -> Dict[str, float]:
    """``{'<block>/<term>': norm, '<block>/<term>_share': norm / sum of the block's norms}``.

    Every term of :data:`TERMS` is reported (0 when absent or not reaching the block);
    the graph is kept for the training step's own backward pass.
    """
    out: Dict[str, float] = {}
    for block, params in blocks.items():
        norms: Dict[str, float] = {}
        for name in TERMS:
            term = terms.get(name)
            if term is None or not term.requires_grad or float(term.detach()) == 0.0:
                norms[name] = 0.0
                continue
            grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            sq = sum(float(g.detach().float().pow(2).sum()) for g in grads if g is not None)
            norms[name] = sq ** 0.5
        total = sum(norms.values())
        for name, n in norms.items():
            out[f"{block}/{name}"] = n
            out[f"{block}/{name}_share"] = n / total if total > 0 else 0.0
    return out


def describe(values: Mapping[str, float], block: str = "modality_shared") -> str:
    """One line: each term's share of the gradient norm on ``block``, e.g. ``id 61%, pose 30%``."""
    parts = [f"{name} {100 * values[f'{block}/{name}_share']:.0f}%"
             for name in TERMS if f"{block}/{name}_share" in values and values[f"{block}/{name}"] > 0]
    return ", ".join(parts) or "no gradient"
