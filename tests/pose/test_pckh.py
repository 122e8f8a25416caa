"""PCKh (vireid.pose.pckh): LIP's evaluation on keypoints (hand case), and heatmaps vs targets."""
from __future__ import annotations

import numpy as np
import pytest

from vireid.pose.codec import HeatmapCodec
from vireid.pose.joints import JOINT_INDEX, NUM_JOINTS
from vireid.pose.pckh import head_sizes, heatmap_pckh, pckh

NAN = float("nan")


def test_pckh_hand_case():
    neck, head = JOINT_INDEX["B_Neck"], JOINT_INDEX["B_Head"]
    gt = np.full((3, NUM_JOINTS, 3), NAN)
    pred = np.full((3, NUM_JOINTS, 2), 0.0)
    # image 0: head size 10 -> threshold 5
    gt[0, neck, :2], gt[0, head, :2] = (0, 0), (0, 10)
    pred[0, neck], pred[0, head] = (0, 0), (3, 14)                # distances 0 and 5 (= threshold: correct)
    gt[0, 0, :2], pred[0, 0] = (10, 10), (13, 14)                 # 5 -> correct
    gt[0, 1, :2], pred[0, 1] = (20, 20), (20, 26)                 # 6 -> wrong
    gt[0, 6, :2], pred[0, 6] = (5, 5), (50, 50)                   # pelvis: per joint only, not in "Avg."
    gt[0, 12, :2], pred[0, 12] = (30, 30), (NAN, NAN)             # not predicted -> wrong
    # image 1: no head annotated -> not evaluated at all
    gt[1, neck, :2], gt[1, 0, :2] = (0, 0), (1, 1)
    # image 2: neck and head at one point -> head size 0 -> not evaluated
    gt[2, neck, :2], gt[2, head, :2], gt[2, 0, :2] = (4, 4), (4, 4), (4, 4)
    pred[2, 0] = (4, 4)
    np.testing.assert_allclose(head_sizes(gt), [10, 0, 0])
    r = pckh(gt, pred)
    assert r.images == 1 and r.joints == 5                        # joints 0, 1, 8, 9, 12
    assert r.average == pytest.approx(100 * 3 / 5)                # 0, 8, 9 correct
    assert r.upper_body == pytest.approx(100 * 2 / 3)             # 8, 9 correct, 12 wrong
    assert r.per_joint[0] == 100 and r.per_joint[1] == 0 and r.per_joint[6] == 0 and r.per_joint[12] == 0
    assert np.isnan(r.per_joint[2])
    assert r.to_json()["per_joint"][2] is None
    assert pckh(gt, pred, threshold=0.6).average == pytest.approx(100 * 4 / 5)


def test_pckh_shape_error():
    with pytest.raises(ValueError, match="shape"):
        pckh(np.zeros((2, 15, 2)), np.zeros((2, 15, 2)))


STRIDE = 4
HM = (32, 16)          # heatmap grid of a 128x64 crop
CODEC = HeatmapCodec((128, 64), STRIDE, sigma=4.0)


def _maps(points: np.ndarray) -> np.ndarray:
    """(16, 2) keypoints in input pixels (NaN = missing) -> [16, 32, 16] Gaussian maps of peak 1."""
    return CODEC.encode(points, np.ones(NUM_JOINTS))[0]


def _pose() -> np.ndarray:
    pts = np.stack([np.full(NUM_JOINTS, 30.0), 8.0 + 6.0 * np.arange(NUM_JOINTS)], axis=1)
    pts[JOINT_INDEX["B_Head"]] = (30.0, 10.0)
    pts[JOINT_INDEX["B_Neck"]] = (30.0, 30.0)     # head size 20 -> correct within 10 px
    return pts


def test_heatmap_pckh_hand_case():
    """Hand-made maps: 4 joints moved, by 4, 8, 12 and 16 px (head size 20: first two correct)."""
    gt = _pose()
    moved = gt.copy()
    for k, (j, dx) in enumerate([(0, 4), (1, 8), (2, 12), (3, 16)]):
        moved[j, 0] += dx
    target = _maps(gt)[None]
    pred = _maps(moved)[None]
    r = heatmap_pckh(pred, target, None, CODEC)
    # Avg. counts 14 joints (not pelvis/spine); joints 2 and 3 (12 and 16 px) are wrong
    assert r.images == 1 and r.joints == 14
    assert r.average == pytest.approx(100 * 12 / 14)
    assert r.per_joint[0] == 100 and r.per_joint[1] == 100 and r.per_joint[2] == 0 and r.per_joint[3] == 0
    assert heatmap_pckh(target, target, None, CODEC).average == 100


def test_heatmap_pckh_leaves_out_unconfident_and_empty_target_joints():
    gt = _pose()
    target = _maps(gt)[None].copy()
    pred = np.zeros_like(target)                    # flat prediction: every joint decodes to cell (0, 0)
    conf = np.ones((1, NUM_JOINTS))
    conf[0, 0] = 0.2                                # below the threshold: left out
    target[0, 1] = 0.0                              # empty target map: left out
    r = heatmap_pckh(pred, target, conf, CODEC, min_confidence=0.3)
    assert r.joints == 12 and r.per_joint[0] != r.per_joint[0] and np.isnan(r.per_joint[1])
    assert r.average == 0.0
    no_head = target.copy()
    no_head[0, JOINT_INDEX["B_Head"]] = 0.0         # no head size: the image is not evaluated
    assert heatmap_pckh(pred, no_head, conf, CODEC).images == 0


def test_heatmap_pckh_shape_errors():
    with pytest.raises(ValueError, match="16"):
        heatmap_pckh(np.zeros((1, 1, 8, 4)), np.zeros((1, 1, 8, 4)), None, CODEC)
    with pytest.raises(ValueError, match="confidence"):
        heatmap_pckh(np.zeros((1, 16, 8, 4)), np.zeros((1, 16, 8, 4)), np.ones((1, 15)), CODEC)
    with pytest.raises(ValueError, match="maps of 8x4 cells, but this codec's are 32x16"):
        heatmap_pckh(np.zeros((1, 16, 8, 4)), np.zeros((1, 16, 8, 4)), None, CODEC)
