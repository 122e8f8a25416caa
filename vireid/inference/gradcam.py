"""Grad-CAM of the ReID branch and the pose branch's mask (the paper's Figs. 4 and 6).

Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017, eqs. 1-2): for a scalar score ``y`` and the
activations ``A`` [C, h, w] of a target layer,

    alpha_c = mean_{i,j} dy / dA_c[i, j]         (global-average-pooled gradients)
    L       = ReLU(sum_c alpha_c A_c)            [h, w]

upsampled (bilinear) to the input size and divided by its maximum, so that it lies in
[0, 1] (an all-zero map, no positive evidence anywhere, stays zero).

**Target layer** (``layer``): ``'f_id'`` (default) is the ReID features the PCB heads pool,
i.e. the layer4 output F_id2 multiplied by the pose mask sigmoid(F_P) in a model with the
Pose Estimation branch (eqs. 7 and 9; equal to F_id2 in the baseline): the map then shows
where the features the identity heads actually use come from, mask included. ``'f_id2'``
is the ReID branch's own layer4 output (eq. 8) before the mask. Both are [B, C4, H/16, W/16].

**Score.** A ReID model has no test-time classes: SYSU-MM01's and RegDB's test identities
are not among the training classes. ``score='auto'`` takes, per image:

* ``'logit'`` when the image's identity is a training class (``labels[b] >= 0``): the sum
  over the P stripes of that class's stripe logit (the identity loss sums the stripe
  cross-entropies, eq. 17) -- Grad-CAM's own choice, the class score;
* else ``'cross'`` when a reference embedding is given: the cosine similarity of the image's
  test feature f_ID (eq. 12: unit stripe embeddings, concatenated) to the reference, by
  default the mean f_ID of the same identity's images *in the other modality*. This is the
  quantity retrieval ranks by, so the map shows which regions make the cross-modality match
  (the usual target for explaining an embedding/similarity model: the gradient of the
  similarity to the matched image instead of a class score);
* else ``'norm'``: the sum over stripes of the L2 norm of the stripe embedding f_i (eq. 11,
  before normalisation), the embedding's strength (the cosine similarity of an embedding to
  itself has zero gradient, so the norm is the self-referential fallback).

**Pose mask** (``mask``): the channel mean of sigmoid(F_P) (eq. 7), [B, h, w] upsampled to
the input size, values as they are in (0, 1) (not rescaled): the soft attention the pose
branch puts on the ReID features. ``None`` for a model without the Pose Estimation branch.

**On the body** (:func:`body_box`, :func:`on_body`): the paper reads Figs. 4 and 6 as "the
features come from the body, not the background". To measure that over many identities, the
crop's keypoints (the heatmap cache's, i.e. the pose estimator's or the exact ones) give a
body box: their bounding box widened by 10% of its width on each side and 5% of its height at
top and bottom (limbs and clothes reach past the joints). A map's share of its mass inside the
box, against the box's share of the crop's area (what a map spread evenly would get), says how
much more than chance the map sits on the body; for the pose mask, the mean inside minus the
mean outside says whether eq. 7 lets the body through more than the background.

The model runs in eval mode (BatchNorm with running statistics), so each image's score
depends on that image only and one backward pass of the summed scores gives every image's
own gradients.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vireid.model import PoseVIReIDNet
from vireid.model.pcb import concat_normalized

log = logging.getLogger(__name__)

LAYERS = ("f_id", "f_id2")
SCORES = ("auto", "logit", "cross", "norm")


def grad_cam(activations: Tensor, score: Tensor) -> Tensor:
    """Grad-CAM of ``score`` [B] on ``activations`` [B, C, h, w] (a tensor of the graph that
    computed ``score``, each score depending on its own sample only): ReLU(sum_c alpha_c A_c)
    with alpha_c the spatial mean of d score / d A_c -> [B, h, w], >= 0, not normalised."""
    if activations.dim() != 4 or score.shape != activations.shape[:1]:
        raise ValueError(f"grad_cam needs activations [B, C, h, w] and score [B], got "
                         f"{tuple(activations.shape)} and {tuple(score.shape)}")
    grads = torch.autograd.grad(score.sum(), activations)[0]        # [B, C, h, w]
    weights = grads.mean(dim=(2, 3), keepdim=True)                   # [B, C, 1, 1]: alpha_c
    return F.relu((weights * activations).sum(dim=1))                # [B, h, w]


def upsample(maps: Tensor, size: Tuple[int, int]) -> Tensor:
    """[B, h, w] -> [B, H, W] (bilinear, ``align_corners=False``)."""
    return F.interpolate(maps[:, None].float(), size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


def normalise_maps(maps: Tensor) -> Tensor:
    """[B, H, W] >= 0 -> each map divided by its maximum: [0, 1]; an all-zero map stays 0."""
    peak = maps.flatten(1).amax(dim=1).clamp_min(0)                  # [B]
    return torch.where(peak[:, None, None] > 0, maps / peak.clamp_min(1e-12)[:, None, None],
                       torch.zeros_like(maps))


def mask_map(pose_features: Tensor) -> Tensor:
    """The pose mask of eq. 7 seen from above: channel mean of sigmoid(F_P) [B, C4, h, w] -> [B, h, w]."""
    return torch.sigmoid(pose_features).mean(dim=1)


def resolve_scores(score: str, labels: Sequence[int], has_reference: Sequence[bool]) -> List[str]:
    """The score used for each image (``'auto'``: logit > cross > norm, see the module docstring);
    ``ValueError`` when an explicit choice lacks what it needs."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    out = []
    for label, ref in zip(labels, has_reference):
        kind = score if score != "auto" else ("logit" if label >= 0 else "cross" if ref else "norm")
        if kind == "logit" and label < 0:
            raise ValueError("score 'logit' needs the image's training class (its identity is not one)")
        if kind == "cross" and not ref:
            raise ValueError("score 'cross' needs a reference embedding (an image of the other modality)")
        out.append(kind)
    return out


def score_of(kinds: Sequence[str], embeddings: Tensor, logits: Tensor, labels: Sequence[int],
             reference: Optional[Tensor]) -> Tensor:
    """Scores [B] from the ReID PCB head's outputs: ``embeddings`` [B, P, E] (f_i, eq. 11),
    ``logits`` [B, P, N]; ``reference`` [B, P*E] (rows used where the kind is 'cross')."""
    out = []
    f_id = concat_normalized(embeddings)                             # [B, P*E], eq. 12
    for b, kind in enumerate(kinds):
        if kind == "logit":
            out.append(logits[b, :, int(labels[b])].sum())
        elif kind == "cross":
            out.append(F.cosine_similarity(f_id[b], reference[b].to(f_id), dim=0))
        else:
            out.append(embeddings[b].norm(dim=-1).sum())
    return torch.stack(out)                                          # [B]


@dataclass
class Explanation:
    """Grad-CAM of one batch (numpy, in batch order)."""

    cam: np.ndarray                  # [B, H, W] float32 in [0, 1], upsampled to the input
    mask: Optional[np.ndarray]       # [B, H, W] float32 in (0, 1): channel mean of sigmoid(F_P); None without PEB
    score: np.ndarray                # [B] float32: the score the gradients are of
    kinds: List[str]                 # [B] 'logit' | 'cross' | 'norm'
    layer: str                       # 'f_id' | 'f_id2'


@contextmanager
def _capture(model: PoseVIReIDNet) -> Iterator[Dict[str, object]]:
    """Forward hooks recording F_id2 (ReID branch output), F_P (pose branch features), the
    masked f_id (the ReID PCB head's input) and the head's (embeddings, logits)."""
    seen: Dict[str, object] = {}
    hooks = [
        model.reid_branch.register_forward_hook(lambda m, i, o: seen.__setitem__("f_id2", o)),
        model.reid_pcb.register_forward_pre_hook(lambda m, i: seen.__setitem__("f_id", i[0])),
        model.reid_pcb.register_forward_hook(lambda m, i, o: seen.__setitem__("pcb", o)),
    ]
    if model.pose_branch is not None:
        hooks.append(model.pose_branch.register_forward_hook(lambda m, i, o: seen.__setitem__("f_p", o.features)))
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


def explain(model: PoseVIReIDNet, images: Tensor, modality: Tensor, score: str = "auto",
            labels: Optional[Sequence[int]] = None, reference: Optional[Tensor] = None,
            has_reference: Optional[Sequence[bool]] = None, layer: str = "f_id") -> Explanation:
    """Grad-CAM maps and pose masks of ``images`` [B, 3, H, W] (normalised, ``modality`` [B]
    0 RGB / 1 IR) through ``model`` (put in eval mode here).

    ``labels`` [B]: training class of each image (-1: not a training identity; default all
    -1); ``reference`` [B, P*E]: the embedding each image's 'cross' score compares with,
    ``has_reference`` [B] which rows of it are real (default: all when given).
    """
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
    b = images.shape[0]
    labels = [-1] * b if labels is None else [int(v) for v in labels]
    if has_reference is None:
        has_reference = [reference is not None] * b
    kinds = resolve_scores(score, labels, has_reference)
    model.eval()
    with torch.enable_grad(), _capture(model) as seen:
        model(images, modality)
        emb, logits = seen["pcb"]                                    # [B, P, E], [B, P, N]
        scores = score_of(kinds, emb, logits, labels, reference)     # [B]
        cam = grad_cam(seen[layer], scores)                          # [B, h, w]
    hw = tuple(images.shape[-2:])
    cam = normalise_maps(upsample(cam.detach(), hw))                 # [B, H, W]
    mask = upsample(mask_map(seen["f_p"].detach()), hw) if "f_p" in seen else None
    return Explanation(cam=cam.cpu().numpy().astype(np.float32),
                       mask=None if mask is None else mask.cpu().numpy().astype(np.float32),
                       score=scores.detach().cpu().numpy().astype(np.float32), kinds=kinds, layer=layer)


#: Body box margins (fraction of the keypoints' box): each side, top and bottom.
BODY_MARGIN_X = 0.10
BODY_MARGIN_Y = 0.05


def body_box(keypoints: np.ndarray, confidence: np.ndarray, size: Tuple[int, int],
             min_confidence: float = 0.5) -> Optional[Tuple[int, int, int, int]]:
    """The body box ``(y0, x0, y1, x1)`` (pixels, ``y1``/``x1`` exclusive) of one crop of ``size``
    (H, W): the bounding box of its keypoints [16, 2] (x, y) with ``confidence`` >= ``min_confidence``,
    widened by :data:`BODY_MARGIN_X` / :data:`BODY_MARGIN_Y` and clipped to the crop. ``None`` with
    fewer than two such joints (no box to speak of)."""
    h, w = int(size[0]), int(size[1])
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    ok = (np.asarray(confidence, dtype=np.float64).reshape(-1) >= min_confidence) & np.isfinite(kp).all(axis=1)
    if ok.sum() < 2:
        return None
    x0, y0 = kp[ok].min(axis=0)
    x1, y1 = kp[ok].max(axis=0)
    dx, dy = BODY_MARGIN_X * (x1 - x0), BODY_MARGIN_Y * (y1 - y0)
    box = (int(np.floor(y0 - dy)), int(np.floor(x0 - dx)), int(np.ceil(y1 + dy)) + 1, int(np.ceil(x1 + dx)) + 1)
    box = (max(box[0], 0), max(box[1], 0), min(box[2], h), min(box[3], w))
    return box if box[2] > box[0] and box[3] > box[1] else None


def on_body(cam: np.ndarray, mask: Optional[np.ndarray], box: Tuple[int, int, int, int]) -> Dict[str, Optional[float]]:
    """What share of the Grad-CAM map ``cam`` [H, W] (>= 0) lies in the body ``box``, against the
    box's share of the crop (``area``): ``cam_share`` and ``lift`` = cam_share / area (both
    ``None`` for an all-zero map: no positive evidence anywhere, neither on nor off the body);
    and, with a pose ``mask`` [H, W], its mean inside the box minus its mean outside
    (``mask_contrast``; ``None`` when the box is the whole crop). ``None``, not NaN: the record
    is written as strict JSON."""
    y0, x0, y1, x1 = box
    inside = np.zeros(cam.shape, dtype=bool)
    inside[y0:y1, x0:x1] = True
    area = float(inside.mean())
    total = float(cam.sum())
    share = float(cam[inside].sum() / total) if total > 0 else None
    out: Dict[str, Optional[float]] = {"area": area, "cam_share": share,
                                       "lift": None if share is None else share / area}
    if mask is not None:
        out["mask_contrast"] = float(mask[inside].mean() - mask[~inside].mean()) if (~inside).any() else None
    return out
