"""PCKh (LIP's pose accuracy): on annotated keypoints, and on heatmaps against cached targets.

:func:`pckh` is LIP's evaluation (GCCPM's ``calc_pckh``): a joint is correct when it lies
within ``threshold`` (0.5) head sizes of its annotation. ``vireid-prep train-estimator``
scores the LIP estimator with it on the LIP val split.

:func:`heatmap_pckh` scores predicted joint heatmaps (the Pose Estimation Branch's Ĥ,
``[N, 16, h, w]``) against target heatmaps (the cache's, from the LIP estimator): both are
decoded to keypoints by their codec (:meth:`vireid.pose.codec.HeatmapCodec.decode`), a target joint counts
when its confidence is above ``min_confidence`` and its map is not empty, and the head size
is taken from the target's B_Head and B_Neck. It measures how well the branch reproduces
its supervision, not accuracy against human annotation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from vireid.pose.codec import HeatmapCodec
from vireid.pose.joints import JOINT_INDEX, NUM_JOINTS

#: joints in LIP's/GCCPM's "Avg." PCKh: all but B_Pelvis and B_Spine
AVERAGE_JOINTS: Tuple[int, ...] = tuple(range(0, 6)) + tuple(range(8, 16))
#: "U.Body": B_Neck .. L_Wrist
UPPER_BODY_JOINTS: Tuple[int, ...] = tuple(range(8, 16))


@dataclass(frozen=True)
class PCKh:
    """PCKh in percent. ``per_joint`` (16,) is NaN for a joint never evaluable."""

    per_joint: np.ndarray
    upper_body: float
    average: float
    images: int           # images with a head size (the others are not evaluated)
    joints: int           # (image, joint) pairs counted in ``average``

    def to_json(self) -> Dict[str, Any]:
        def num(v: float) -> Optional[float]:
            return None if not math.isfinite(v) else round(float(v), 4)
        return {"average": num(self.average), "upper_body": num(self.upper_body),
                "per_joint": [num(v) for v in self.per_joint], "images": self.images, "joints": self.joints}


def head_sizes(gt: np.ndarray) -> np.ndarray:
    """LIP head size per image: distance B_Neck - B_Head; 0 when either is not annotated."""
    gt = np.asarray(gt, np.float64)
    d = np.linalg.norm(gt[:, JOINT_INDEX["B_Head"], :2] - gt[:, JOINT_INDEX["B_Neck"], :2], axis=1)
    return np.where(np.isfinite(d), d, 0.0)


def pckh(gt: np.ndarray, pred: np.ndarray, threshold: float = 0.5) -> PCKh:
    """PCKh@``threshold`` as LIP's evaluation (GCCPM's ``calc_pckh``) computes it.

    ``gt`` (N, 16, >=2) annotated keypoints, NaN for joints not annotated; ``pred``
    (N, 16, 2) predictions, NaN for a joint not predicted (counted wrong). A joint is
    correct when its distance to the annotation is at most ``threshold`` times the
    image's head size (:func:`head_sizes`). Images without a head size (neck or head
    not annotated, or both at one point) and joints not annotated are left out;
    occluded joints are evaluated like visible ones (the annotation's flag is unused).
    ``average`` pools every evaluated (image, joint) pair of all joints except
    B_Pelvis and B_Spine (LIP's "Avg."), ``upper_body`` those of B_Neck..L_Wrist.
    """
    gt = np.asarray(gt, np.float64)[..., :2]
    pred = np.asarray(pred, np.float64)[..., :2]
    if gt.shape != pred.shape or gt.ndim != 3 or gt.shape[1] != NUM_JOINTS:
        raise ValueError(f"expected gt and pred of shape (N, {NUM_JOINTS}, 2), got {gt.shape} and {pred.shape}")
    head = head_sizes(gt)
    valid = (head > 0)[:, None] & np.isfinite(gt).all(axis=2)
    dist = np.linalg.norm(gt - pred, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        correct = np.nan_to_num(dist, nan=np.inf) <= threshold * head[:, None]

    def rate(cols: Sequence[int]) -> Tuple[float, int]:
        v = valid[:, list(cols)]
        n = int(v.sum())
        return (100.0 * float(correct[:, list(cols)][v].mean()) if n else float("nan")), n

    per_joint = np.array([rate([j])[0] for j in range(NUM_JOINTS)])
    average, n_avg = rate(AVERAGE_JOINTS)
    upper, _ = rate(UPPER_BODY_JOINTS)
    return PCKh(per_joint=per_joint, upper_body=upper, average=average, images=int((head > 0).sum()), joints=n_avg)


def heatmap_pckh(pred: np.ndarray, target: np.ndarray, confidence: Optional[np.ndarray], codec: HeatmapCodec,
                 min_confidence: float = 0.0, threshold: float = 0.5) -> PCKh:
    """PCKh of predicted heatmaps ``pred`` against target heatmaps ``target`` (both
    ``[N, 16, h, w]``, the grid of ``codec``; both decoded with it).

    A target joint is evaluated when its ``confidence`` (``(N, 16)``; None = all 1) is above
    ``min_confidence`` and its map's peak is above 0; the predicted joint is its map's peak,
    whatever its height (a flat map still names a cell, as LIP's evaluation counts every joint).
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != NUM_JOINTS:
        raise ValueError(f"expected pred and target heatmaps [N, {NUM_JOINTS}, h, w] of one shape, got "
                         f"{pred.shape} and {target.shape}")
    if confidence is not None:
        confidence = np.asarray(confidence, np.float64)
        if confidence.shape != target.shape[:2]:
            raise ValueError(f"confidence must be {target.shape[:2]}, got {confidence.shape}")
    gt, peak = codec.decode_batch(target)
    kept = peak > 0
    if confidence is not None:
        kept &= confidence > min_confidence
    gt[~kept] = np.nan
    points, _ = codec.decode_batch(pred)
    return pckh(gt, points, threshold)
