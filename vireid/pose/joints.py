"""The 16 LIP joints: the one joint schema shared by the synthetic data, the pose
estimators, the heatmap cache and training.

The order is the column order of the LIP annotation CSV (each joint written as
``x, y, visibility``), which is also the channel order of every heatmap tensor in
this project and of GCCPM's first 16 output maps (its 17th is the background).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

JOINT_NAMES: Tuple[str, ...] = (
    "R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle",
    "B_Pelvis", "B_Spine", "B_Neck", "B_Head",
    "R_Wrist", "R_Elbow", "R_Shoulder", "L_Shoulder", "L_Elbow", "L_Wrist",
)
NUM_JOINTS: int = len(JOINT_NAMES)
JOINT_INDEX: Dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

#: Left/right pairs swapped by a horizontal flip (indices into ``JOINT_NAMES``).
FLIP_PAIRS: Tuple[Tuple[int, int], ...] = (
    (0, 5),    # ankles
    (1, 4),    # knees
    (2, 3),    # hips
    (10, 15),  # wrists
    (11, 14),  # elbows
    (12, 13),  # shoulders
)

#: Skeleton edges for drawing (a tree rooted at the pelvis).
SKELETON: Tuple[Tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 6),          # right leg
    (5, 4), (4, 3), (3, 6),          # left leg
    (6, 7), (7, 8), (8, 9),          # torso and head
    (8, 12), (12, 11), (11, 10),     # right arm
    (8, 13), (13, 14), (14, 15),     # left arm
)

_RIGHT = (255, 96, 32)   # BGR: blue-ish for the right side
_LEFT = (32, 200, 255)   # BGR: orange for the left side
_CENTRE = (80, 255, 80)  # BGR: green for the body's axis

#: One BGR colour per joint (OpenCV order), right side blue, left side orange.
JOINT_COLOURS: Tuple[Tuple[int, int, int], ...] = tuple(
    _RIGHT if n.startswith("R_") else _LEFT if n.startswith("L_") else _CENTRE for n in JOINT_NAMES
)


def flip_permutation() -> List[int]:
    """Channel permutation that maps joint maps of an image to those of its mirror image.

    ``flipped_maps = maps[..., perm, :, ::-1]``: channel ``i`` of the flipped image is
    channel ``perm[i]`` of the original, mirrored.
    """
    perm = list(range(NUM_JOINTS))
    for a, b in FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return perm


def flip_keypoints(keypoints: np.ndarray, width: float) -> np.ndarray:
    """Mirror keypoints ``(..., 16, C>=2)`` (x, y[, extra]) horizontally in an image of ``width``.

    Pixel centres are at integer coordinates, so ``x -> width - 1 - x``; left and right
    joints swap rows. NaN coordinates (missing joints) stay NaN.
    """
    kp = np.asarray(keypoints, dtype=np.float64).copy()
    if kp.shape[-2] != NUM_JOINTS:
        raise ValueError(f"expected {NUM_JOINTS} joints on axis -2, got shape {kp.shape}")
    kp[..., 0] = (width - 1) - kp[..., 0]
    return kp[..., flip_permutation(), :]

