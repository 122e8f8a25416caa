"""Conversions from other keypoint conventions to the 16 LIP joints.

COCO's 17 body keypoints (nose, eyes, ears, shoulders, elbows, wrists, hips, knees,
ankles; the person's own left/right, as LIP) map to LIP as follows:

* limbs (ankles, knees, hips, wrists, elbows, shoulders): the same joints;
* ``B_Pelvis`` = midpoint of the two hips;
* ``B_Neck`` = midpoint of the two shoulders;
* ``B_Spine`` = the point 1/2 of the way from the pelvis to the neck (LIP annotates the
  spine joint at mid-torso);
* ``B_Head`` = mean of the visible face keypoints (nose, eyes, ears).

A derived joint exists only if all its sources exist (the head: any face point), and
its confidence is the minimum of its sources' (the head: the maximum over face points).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from vireid.pose.joints import JOINT_INDEX, NUM_JOINTS

COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
_DIRECT = {
    "R_Ankle": "right_ankle", "R_Knee": "right_knee", "R_Hip": "right_hip",
    "L_Hip": "left_hip", "L_Knee": "left_knee", "L_Ankle": "left_ankle",
    "R_Wrist": "right_wrist", "R_Elbow": "right_elbow", "R_Shoulder": "right_shoulder",
    "L_Shoulder": "left_shoulder", "L_Elbow": "left_elbow", "L_Wrist": "left_wrist",
}
SPINE_FRACTION = 0.5


def lip_from_coco17(points: np.ndarray, names: Sequence[str] = COCO17_NAMES) -> np.ndarray:
    """``(17, 3)`` rows (x, y, confidence in [0, 1]; confidence 0 = missing) -> ``(16, 3)``
    LIP rows (x, y, confidence) with ``(nan, nan, 0)`` for a missing joint."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (len(names), 3):
        raise ValueError(f"expected ({len(names)}, 3) keypoints, got {pts.shape}")
    at = {n: pts[i] for i, n in enumerate(names)}
    out = np.full((NUM_JOINTS, 3), np.nan)
    out[:, 2] = 0.0

    def ok(p: np.ndarray) -> bool:
        return bool(p[2] > 0 and np.isfinite(p[:2]).all())

    for lip, coco in _DIRECT.items():
        if ok(at[coco]):
            out[JOINT_INDEX[lip]] = at[coco]

    def mid(a: np.ndarray, b: np.ndarray, t: float = 0.5) -> np.ndarray:
        return np.array([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), min(a[2], b[2])])

    hips = (at["right_hip"], at["left_hip"])
    shoulders = (at["right_shoulder"], at["left_shoulder"])
    if all(ok(p) for p in hips):
        out[JOINT_INDEX["B_Pelvis"]] = mid(*hips)
    if all(ok(p) for p in shoulders):
        out[JOINT_INDEX["B_Neck"]] = mid(*shoulders)
    if all(ok(p) for p in hips + shoulders):
        out[JOINT_INDEX["B_Spine"]] = mid(out[JOINT_INDEX["B_Pelvis"]], out[JOINT_INDEX["B_Neck"]], SPINE_FRACTION)
    face = [at[n] for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear") if ok(at[n])]
    if face:
        f = np.stack(face)
        out[JOINT_INDEX["B_Head"]] = [f[:, 0].mean(), f[:, 1].mean(), f[:, 2].max()]
    return out.astype(np.float32)
