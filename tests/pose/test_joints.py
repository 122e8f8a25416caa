"""The LIP joint schema."""
from __future__ import annotations

import numpy as np
import pytest

from vireid.pose.joints import (FLIP_PAIRS, JOINT_NAMES, NUM_JOINTS, SKELETON,
                                flip_keypoints, flip_permutation)


def test_flip_pairs_are_left_right_partners():
    for a, b in FLIP_PAIRS:
        na, nb = JOINT_NAMES[a], JOINT_NAMES[b]
        assert {na[:2], nb[:2]} == {"R_", "L_"} and na[2:] == nb[2:]
    paired = {j for p in FLIP_PAIRS for j in p}
    assert all(JOINT_NAMES[j].startswith("B_") for j in range(NUM_JOINTS) if j not in paired)


def test_flip_is_an_involution():
    perm = flip_permutation()
    assert [perm[p] for p in perm] == list(range(NUM_JOINTS))
    kps = np.random.default_rng(0).uniform(0, 50, (NUM_JOINTS, 2))
    np.testing.assert_allclose(flip_keypoints(flip_keypoints(kps, 64), 64), kps)
    flipped = flip_keypoints(kps, 64)
    assert flipped[0, 0] == pytest.approx(63 - kps[5, 0])              # R_Ankle <- mirrored L_Ankle


def test_skeleton_is_a_tree_over_all_joints():
    assert len(SKELETON) == NUM_JOINTS - 1
    assert {j for e in SKELETON for j in e} == set(range(NUM_JOINTS))
