"""Which loss term drives the shared layers: per-term gradient norms (``grad_every``).

Every ``grad_every`` steps the trainer measures, for each weighted term of eq. 21
(``id``, ``beta * hctri``, ``lambda * pose``, ``gamma * kd``), the L2 norm of its gradient
on the parameters of each shared block:

* ``modality_shared``: layer2, which every term reaches (Fig. 2's modality-shared module);
* ``pose_conv1``: the Pose Estimation branch's first block (Conv1), the branch's entry
  from the shared features (absent without the PEB).

and each term's share, its norm divided by the sum of the terms' norms on that block. The
norms are taken of the weighted term, so a term switched off (weight 0, or absent from the
model) has norm and share 0. Cost: one extra backward pass per measured term on a
measured step, each over the union of the blocks' parameters (split per block afterwards),
not one per term and block; the training step itself is unchanged. In float32/bfloat16,
not under fp16's loss scaling. Under DDP each rank measures its own shard (rank 0's figures
are logged).

Collectives: a term's backward passes through the all-reduces of synchronised BatchNorm
and of the gathered hetero-center triplet loss, so every rank must run the same backward
passes in the same order. Which terms are measured is therefore decided from what all
ranks share -- the configuration (a term the model has, with a weight > 0) and one
all-reduced flag (the term has a graph on every rank) -- never from a rank's own loss value
(a rank whose share of the batch gives a zero hetero-center term still differentiates it).

Records: ``kind='grad'`` in ``log.jsonl`` with ``<block>/<term>`` norms and
``<block>/<term>_share`` shares (TensorBoard ``grad/...``); ``losses.png`` draws the shares.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Sequence

import torch
from torch import Tensor, nn

from vireid.engine import distributed as ddp
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


def measured_terms(losses: Mapping[str, Tensor], loss_cfg: LossConfig) -> List[str]:
    """The terms worth a backward pass, from the configuration alone: present (the model
    config decides which terms :func:`vireid.losses.compute_losses` returns) and weighted > 0."""
    weights = term_weights(loss_cfg)
    return [name for name in TERMS if name in losses and weights[name] > 0]


def gradient_norms(terms: Mapping[str, Tensor], blocks: Mapping[str, List[nn.Parameter]],
                   measured: Sequence[str] = ()) -> Dict[str, float]:
    """``{'<block>/<term>': norm, '<block>/<term>_share': norm / sum of the block's norms}``.

    ``measured``: the terms to differentiate (:func:`measured_terms`; empty: every term of
    ``terms``), the same list on every rank. Every term of :data:`TERMS` is reported (0 when
    not measured or not reaching the block). One ``autograd.grad`` per measured term over the
    union of the blocks' parameters; the graph is kept for the training step's own backward.
    """
    names = [n for n in (measured or list(terms)) if n in terms]
    # one collective: a term is differentiated only where every rank has a graph for it
    has_graph = torch.tensor([1.0 if terms[n].requires_grad else 0.0 for n in names])
    agreed = ddp.all_reduce_min(has_graph).tolist() if names else []
    names = [n for n, ok in zip(names, agreed) if ok > 0]
    union: List[nn.Parameter] = []
    seen = set()
    for params in blocks.values():
        for p in params:
            if id(p) not in seen:
                seen.add(id(p))
                union.append(p)
    slot = {id(p): i for i, p in enumerate(union)}
    squares: Dict[str, List[float]] = {}                  # term -> squared gradient norm of each param
    for name in names:
        grads = torch.autograd.grad(terms[name], union, retain_graph=True, allow_unused=True)
        squares[name] = [float(g.detach().float().pow(2).sum()) if g is not None else 0.0 for g in grads]
    out: Dict[str, float] = {}
    for block, params in blocks.items():
        norms = {name: (sum(squares[name][slot[id(p)]] for p in params) ** 0.5 if name in squares else 0.0)
                 for name in TERMS}
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
