"""The overall objective (paper eq. 21) and its configuration.

``L = L_id + beta * L_hctri + lambda * L_pose + gamma * L_KD`` with
(beta, lambda, gamma) = (0.1, 5, 1) (Section III-E and the parameter analysis, eq. 22).

:func:`compute_losses` returns every named term plus ``'total'``; the terms of parts that
the model switched off (see :class:`vireid.model.ModelConfig`) are absent: no ``'pose'``
when the output carries no heatmaps (baseline, or PEB without pose loss), no ``'kd'`` when
it carries no teacher logits (no HFC).

Multi-process training passes ``gather`` (a :data:`BatchGather`, e.g.
:func:`vireid.engine.distributed.gather_batch`): the hetero-center triplet term is then computed
over the global batch's embeddings, labels and modalities, so every process computes the
single-process value of eq. 19 (its gradient reaching each process's own share); the other
terms stay per-sample averages of the process's own share, which DDP's gradient average makes global.

Every term is computed in float32 under any autocast (:mod:`vireid.losses.precision`): the
network's half-precision outputs are cast up at each loss's entry.

``LossConfig.hctri_feature`` picks what the hetero-center triplet term sees of each stripe
embedding: ``raw`` (default; the FC + BN output f_i of eq. 11, which eqs. 18-20 are written
on) or ``l2x5`` (``5 * f_i / ||f_i||``, each stripe embedding L2-normalised and scaled by 5:
what the public release feeds its triplet-style term, ``Normalize`` in its model).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch.nn.functional as F
from torch import Tensor

from .hetero_center import HeteroCenterTripletLoss
from .identity import identity_loss
from .kd import kd_loss
from .pose import pose_loss
from .precision import autocast_off, to_float32

logger = logging.getLogger(__name__)


#: Values of ``LossConfig.hctri_feature``.
HCTRI_FEATURES = ("raw", "l2x5")
#: The release's scale of the L2-normalised embeddings (``hctri_feature: l2x5``).
L2_SCALE = 5.0


@dataclass
class LossConfig:
    """Loss weights and options; defaults are the paper's (eq. 21, Section III-E).

    Attributes:
        beta: weight of the hetero-center triplet loss (paper 0.1).
        lambda_pose: weight of the pose loss (paper 5; the release uses 3 SYSU / 7 RegDB).
        gamma: weight of the KD loss (paper 1).
        margin: hetero-center triplet margin rho (paper 0.3).
        hctri_reduction: ``'mean'`` over the 2D centers (reference implementation, default)
            or ``'sum'`` (eq. 19 literally) — see :mod:`vireid.losses.hetero_center`.
        pose_normalization: ``'mean'`` (default, MSE, the release's reading), ``'sum'``
            (eq. 16 literally: ``H * W`` times larger) or ``'relative'`` (each image's
            squared error over its target energy); see :mod:`vireid.losses.pose`.
        pose_min_confidence: a cached joint supervises the pose branch, at full strength,
            when the estimator's confidence is above this (default 0: every joint it
            reported); the confidence is never an amplitude.
        hctri_feature: what the hetero-center triplet term sees of each stripe embedding:
            ``'raw'`` (default, eqs. 18-20 on f_i) or ``'l2x5'`` (L2-normalised times 5, the
            release's); see :func:`hctri_features`.
        kd_temperature: softmax temperature of the KD loss (eq. 15 as written: 1).
        detach_teacher: stop gradients into PCB_T (default False: it learns from KD).
        label_smoothing: identity-loss label smoothing (paper: none).
    """

    beta: float = 0.1
    lambda_pose: float = 5.0
    gamma: float = 1.0
    margin: float = 0.3
    hctri_reduction: str = "mean"
    hctri_feature: str = "raw"
    pose_normalization: str = "mean"
    pose_min_confidence: float = 0.0
    kd_temperature: float = 1.0
    detach_teacher: bool = False
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        for name in ("beta", "lambda_pose", "gamma", "margin", "label_smoothing"):
            if getattr(self, name) < 0:
                raise ValueError(f"LossConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.pose_min_confidence < 1.0:
            raise ValueError(f"LossConfig.pose_min_confidence must be in [0, 1), got {self.pose_min_confidence}")
        if self.kd_temperature <= 0:
            raise ValueError(f"LossConfig.kd_temperature must be > 0, got {self.kd_temperature}")
        if self.hctri_reduction not in ("mean", "sum"):
            raise ValueError(f"LossConfig.hctri_reduction must be 'mean' or 'sum', got {self.hctri_reduction!r}")
        if self.hctri_feature not in HCTRI_FEATURES:
            raise ValueError(f"LossConfig.hctri_feature must be one of {HCTRI_FEATURES}, got {self.hctri_feature!r}")
        if self.pose_normalization not in ("mean", "sum", "relative"):
            raise ValueError(
                "LossConfig.pose_normalization must be 'mean', 'sum' or 'relative', "
                f"got {self.pose_normalization!r}"
            )


#: ``gather(embeddings, labels, modality) -> (embeddings, labels, modality)`` of the global
#: batch: the hetero-center triplet term's view of a batch split over processes.
BatchGather = Callable[[Sequence[Tensor], Tensor, Tensor], Tuple[List[Tensor], Tensor, Tensor]]

#: The terms of eq. 21, in the order of the total.
TERMS = ("id", "hctri", "pose", "kd")


def term_weights(config: Optional[LossConfig] = None) -> Dict[str, float]:
    """Eq. 21's weight of each term: ``{'id': 1, 'hctri': beta, 'pose': lambda, 'kd': gamma}``."""
    cfg = config or LossConfig()
    return {"id": 1.0, "hctri": float(cfg.beta), "pose": float(cfg.lambda_pose), "kd": float(cfg.gamma)}


def loss_terms(
    outputs: "object",
    labels: Tensor,
    modality: Tensor,
    target_heatmaps: Optional[Tensor] = None,
    joint_weights: Optional[Tensor] = None,
    config: Optional[LossConfig] = None,
    gather: Optional[BatchGather] = None,
    hctri: Optional[HeteroCenterTripletLoss] = None,
) -> Dict[str, Tuple[float, Callable[[], Tensor]]]:
    """Each term of eq. 21 as ``name -> (weight, compute)``, in the order of the total.

    ``compute()`` evaluates that term alone (unweighted), so a caller can time the terms one by
    one (``vireid-train --profile``); :func:`compute_losses` evaluates them all. Arguments as
    for :func:`compute_losses`; a term the model switched off is absent.
    """
    cfg = config or LossConfig()
    weight = term_weights(cfg)
    hctri = hctri if hctri is not None else hctri_loss(cfg)
    branches = [(outputs.id_logits, outputs.id_embeddings)]
    if outputs.pose_logits is not None:
        branches.append((outputs.pose_logits, outputs.pose_embeddings))
    terms: Dict[str, Tuple[float, Callable[[], Tensor]]] = {
        "id": (weight["id"], lambda: sum(identity_loss(lg, labels, cfg.label_smoothing) for lg, _ in branches)),
        "hctri": (weight["hctri"], lambda: _hctri_term(hctri, [emb for _, emb in branches], labels, modality, gather,
                                                       cfg.hctri_feature)),
    }
    if outputs.heatmaps is not None:
        if target_heatmaps is None:
            raise ValueError("the model predicts heatmaps (pose loss on) but no target heatmaps were given")
        terms["pose"] = (weight["pose"], lambda: pose_loss(outputs.heatmaps, target_heatmaps, joint_weights,
                                                            cfg.pose_normalization, cfg.pose_min_confidence))
    if outputs.teacher_logits is not None:
        terms["kd"] = (weight["kd"], lambda: sum(kd_loss(outputs.teacher_logits, lg, cfg.kd_temperature,
                                                      cfg.detach_teacher) for lg, _ in branches))
    return terms


def hctri_loss(config: Optional[LossConfig] = None) -> HeteroCenterTripletLoss:
    """The hetero-center triplet loss of ``config`` (margin, reduction): built once per run and
    passed to :func:`compute_losses` / :func:`loss_terms` (``vireid-train``'s loop holds one)."""
    cfg = config or LossConfig()
    return HeteroCenterTripletLoss(cfg.margin, cfg.hctri_reduction)


def hctri_features(embeddings: Tensor, feature: str = "raw") -> Tensor:
    """The ``[B, (P,) d]`` stripe embeddings as the hetero-center triplet term sees them, in float32:
    ``'raw'`` as they are, ``'l2x5'`` each stripe's ``d``-vector L2-normalised and times 5."""
    if feature not in HCTRI_FEATURES:
        raise ValueError(f"hctri feature must be one of {HCTRI_FEATURES}, got {feature!r}")
    embeddings = to_float32(embeddings)
    if feature == "raw":
        return embeddings
    with autocast_off(embeddings):
        return F.normalize(embeddings, p=2.0, dim=-1) * L2_SCALE


def _hctri_term(hctri: HeteroCenterTripletLoss, embeddings: List[Tensor], labels: Tensor, modality: Tensor,
                gather: Optional[BatchGather], feature: str = "raw") -> Tensor:
    """Eq. 20: the hetero-center triplet loss summed over the branches' stripe embeddings (as
    :func:`hctri_features` makes them); with ``gather``, over the global batch's."""
    embeddings = [hctri_features(emb, feature) for emb in embeddings]
    if gather is not None:
        embeddings, labels, modality = gather(embeddings, labels, modality)
    return sum(hctri(emb, labels, modality) for emb in embeddings)


def compute_losses(
    outputs: "object",
    labels: Tensor,
    modality: Tensor,
    target_heatmaps: Optional[Tensor] = None,
    joint_weights: Optional[Tensor] = None,
    config: Optional[LossConfig] = None,
    gather: Optional[BatchGather] = None,
    hctri: Optional[HeteroCenterTripletLoss] = None,
) -> Dict[str, Tensor]:
    """All loss terms of eq. 21 for one training batch.

    Args:
        outputs: the train-mode output of :class:`vireid.model.PoseVIReIDNet`
            (a :class:`vireid.model.TrainOutput`).
        labels: ``[B]`` identity indices.
        modality: ``[B]`` modality flags (0 RGB, 1 IR).
        target_heatmaps: ``[B, J, H, W]`` (or merged ``[B, 1, H, W]``) targets; required when
            the output carries predicted heatmaps.
        joint_weights: ``[B, J]`` per-joint weights (see :func:`vireid.losses.pose_loss`).
        config: loss weights; paper defaults when ``None``.
        gather: multi-process training: the global batch for the hetero-center triplet
            term (:data:`BatchGather`; module docstring); ``None``: this batch alone.
        hctri: the run's hetero-center triplet loss (:func:`hctri_loss` of ``config``, built
            once per run); ``None``: built for this call.

    Returns:
        ``{'id', 'hctri'[, 'pose'][, 'kd'], 'total'}``: unweighted terms and the weighted total,
        all float32 whatever autocast is on (module docstring).
    """
    losses: Dict[str, Tensor] = {}
    total: Optional[Tensor] = None
    with autocast_off(labels, target_heatmaps):      # the weighted sum in float32 too
        for name, (weight, compute) in loss_terms(outputs, labels, modality, target_heatmaps, joint_weights,
                                                  config, gather, hctri).items():
            losses[name] = compute()
            total = losses[name] if name == "id" else total + weight * losses[name]
    losses["total"] = total
    return losses

