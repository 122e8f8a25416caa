"""Conversions from other keypoint conventions to the 16 LIP joints.

LIP's joints are MPII's, in MPII's order: ``B_Spine`` is the thorax, ``B_Neck`` the upper
neck, ``B_Head`` the top of the head (as :mod:`pipeline.synth.skeleton` draws them).
Body-landmark models (COCO's 17 keypoints, BlazePose's 33, which contain COCO's) give
limbs, shoulders, hips and face points; the body axis is derived from them, once, here.
With S the midpoint of the shoulders, P the midpoint of the hips and C the mean of the
face points (nose, eyes, ears):

* limbs (ankles, knees, hips, wrists, elbows, shoulders): the same joints (the person's
  own left and right, as LIP);
* ``B_Pelvis`` = P;
* ``B_Spine`` (thorax) = S + ``SPINE_FRACTION`` (0.05) x (P - S), just below the shoulder line;
* ``B_Neck`` (upper neck) = S + ``NECK_FRACTION`` (0.5) x (C - S), about chin height;
* ``B_Head`` (top of head) = C + ``HEAD_RAISE`` (0.6) x h x u, u the unit vector of the
  torso axis from P to S ("up" along the body; straight up in the image when the hips
  are missing) and h = (C - S) . u the face centre's height above the shoulders along it
  (eye level is ~19 cm above the shoulder line, the crown ~12 cm above eye level).
  Raising along the torso axis keeps the point on the head when the face is in profile.

Confidences: a derived joint's is the minimum of its sources', C's being the *maximum*
over the face points (the head is where it is even when the face is turned away). A
source with confidence 0 is missing, and so is every joint derived from it (the head
needs the shoulders and at least one face point).
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
_FACE = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
SPINE_FRACTION = 0.05
NECK_FRACTION = 0.5
HEAD_RAISE = 0.6
#: recorded by estimators so that a change of these rules invalidates caches
MAPPING_ID = f"body-to-lip16/2 spine={SPINE_FRACTION} neck={NECK_FRACTION} head_raise={HEAD_RAISE} conf=min(face=max)"


def lip_from_coco17(points: np.ndarray, names: Sequence[str] = COCO17_NAMES) -> np.ndarray:
    """``(17, 3)`` rows (x, y, confidence in [0, 1]; 0 = missing) in COCO's order -> ``(16, 3)``
    float32 LIP rows (x, y, confidence), ``(nan, nan, 0)`` for a missing joint."""
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
    shoulders = [at["right_shoulder"], at["left_shoulder"]]
    hips = [at["right_hip"], at["left_hip"]]
    face = [at[n] for n in _FACE if ok(at[n])]
    has_s, has_p = all(ok(p) for p in shoulders), all(ok(p) for p in hips)
    s = np.mean([p[:2] for p in shoulders], axis=0) if has_s else None
    s_conf = min(p[2] for p in shoulders)
    p_mid = np.mean([p[:2] for p in hips], axis=0) if has_p else None
    p_conf = min(p[2] for p in hips)
    if has_p:
        out[JOINT_INDEX["B_Pelvis"]] = [*p_mid, p_conf]
    if has_s and has_p:
        out[JOINT_INDEX["B_Spine"]] = [*(s + SPINE_FRACTION * (p_mid - s)), min(s_conf, p_conf)]
    if has_s and face:
        c = np.mean([f[:2] for f in face], axis=0)
        c_conf = max(f[2] for f in face)
        out[JOINT_INDEX["B_Neck"]] = [*(s + NECK_FRACTION * (c - s)), min(s_conf, c_conf)]
        axis = s - p_mid if has_p else np.array([0.0, -1.0])
        norm = float(np.hypot(*axis))
        up = axis / norm if norm > 1e-6 else np.array([0.0, -1.0])
        rise = max(float(np.dot(c - s, up)), 0.0)
        head_conf = min(s_conf, p_conf, c_conf) if (has_p and norm > 1e-6) else min(s_conf, c_conf)
        out[JOINT_INDEX["B_Head"]] = [*(c + HEAD_RAISE * rise * up), head_conf]
    return out.astype(np.float32)
