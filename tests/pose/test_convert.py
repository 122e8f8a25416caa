"""COCO-17 -> LIP-16 mapping, hand-computed."""
from __future__ import annotations

import numpy as np
import pytest

from vireid.pose.convert import COCO17_NAMES, lip_from_coco17
from vireid.pose.joints import JOINT_INDEX


def coco_person() -> np.ndarray:
    pts = np.zeros((17, 3))
    pos = {"nose": (10, 4), "left_eye": (11, 3), "right_eye": (9, 3), "left_ear": (12, 4), "right_ear": (8, 4),
           "left_shoulder": (14, 10), "right_shoulder": (6, 10), "left_elbow": (15, 16), "right_elbow": (5, 16),
           "left_wrist": (15, 22), "right_wrist": (5, 22), "left_hip": (13, 24), "right_hip": (7, 24),
           "left_knee": (13, 32), "right_knee": (7, 32), "left_ankle": (13, 40), "right_ankle": (7, 40)}
    for i, n in enumerate(COCO17_NAMES):
        pts[i] = (*pos[n], 0.9)
    return pts


def test_direct_and_derived_joints():
    pts = coco_person()
    pts[COCO17_NAMES.index("left_hip"), 2] = 0.5
    lip = lip_from_coco17(pts)
    assert lip.shape == (16, 3)
    np.testing.assert_allclose(lip[JOINT_INDEX["R_Ankle"]], [7, 40, 0.9], rtol=1e-6)
    np.testing.assert_allclose(lip[JOINT_INDEX["L_Wrist"]], [15, 22, 0.9], rtol=1e-6)
    # S = (10, 10), P = (10, 24), face centre C = (10, 3.6); up = (0, -1), C is 6.4 above S
    np.testing.assert_allclose(lip[JOINT_INDEX["B_Pelvis"]], [10, 24, 0.5], rtol=1e-6)   # min confidence
    np.testing.assert_allclose(lip[JOINT_INDEX["B_Spine"]], [10, 10 + 0.05 * 14, 0.5], rtol=1e-6)
    np.testing.assert_allclose(lip[JOINT_INDEX["B_Neck"]], [10, 10 - 0.5 * 6.4, 0.9], rtol=1e-6)
    np.testing.assert_allclose(lip[JOINT_INDEX["B_Head"]], [10, 3.6 - 0.6 * 6.4, 0.5], rtol=1e-6)


def test_missing_sources_give_missing_joints():
    pts = coco_person()
    pts[COCO17_NAMES.index("right_shoulder"), 2] = 0
    for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"):
        pts[COCO17_NAMES.index(n), 2] = 0
    lip = lip_from_coco17(pts)
    for name in ("R_Shoulder", "B_Neck", "B_Spine", "B_Head"):
        assert np.isnan(lip[JOINT_INDEX[name], :2]).all() and lip[JOINT_INDEX[name], 2] == 0, name
    assert np.isfinite(lip[JOINT_INDEX["B_Pelvis"]]).all()


def test_wrong_shape_rejected():
    with pytest.raises(ValueError, match=r"\(17, 3\)"):
        lip_from_coco17(np.zeros((16, 3)))
