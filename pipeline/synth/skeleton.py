"""The 16 LIP joints of a synthetic person, from its build and a pose.

Body frame (units of body height): x towards the person's left when they face the
camera, y down from the top of the head (soles at ~1), z forward (the way the person
faces). :func:`pose_joints` builds the joints in that frame and turns the body by the
pose's yaw about the vertical axis; afterwards x is image-right and z points towards
the camera (orthographic view), so larger z is nearer. ``B_Head`` is the top of the
head, ``B_Neck`` the upper neck, ``B_Spine`` the thorax, as in LIP/MPII.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.synth.traits import Build
from vireid.pose.joints import JOINT_INDEX, NUM_JOINTS

FOOT_HEIGHT = 0.03   # ankle above the sole


@dataclass(frozen=True)
class Pose:
    """One image's pose parameters (angles in radians)."""

    yaw: float            # 0: facing the camera, pi: back to it, +pi/2: facing image right
    phase: float = 0.0    # walking-cycle phase
    stride: float = 0.0   # hip swing amplitude; 0 = standing
    arm_swing: float = 0.0
    elbow: float = 0.15   # elbow flexion (forward)
    raise_left: float = 0.08   # arm abduction; 0 = hanging, pi/2 = horizontal
    raise_right: float = 0.08
    lean: float = 0.0     # forward lean of the upper body


def sample_walking_pose(rng: np.random.Generator, yaw: float, stride_max: float = 0.45) -> Pose:
    """A walking (sometimes standing) pose facing ``yaw``."""
    stride = 0.0 if rng.random() < 0.12 else rng.uniform(0.12, stride_max)
    return Pose(yaw=yaw, phase=rng.uniform(0, 2 * math.pi), stride=stride,
                arm_swing=stride * rng.uniform(0.5, 1.0), elbow=rng.uniform(0.05, 0.5),
                raise_left=rng.uniform(0.04, 0.16), raise_right=rng.uniform(0.04, 0.16),
                lean=rng.uniform(-0.02, 0.08))


def yaw_rotate(points: np.ndarray, yaw: float) -> np.ndarray:
    """Turn body-frame points ``(..., 3)`` by ``yaw`` about the vertical axis (see module doc)."""
    c, s = math.cos(yaw), math.sin(yaw)
    p = np.asarray(points, dtype=np.float64)
    out = p.copy()
    out[..., 0] = p[..., 0] * c + p[..., 2] * s
    out[..., 2] = -p[..., 0] * s + p[..., 2] * c
    return out


def _limb_dir(side: int, abduct: float, swing: float) -> np.ndarray:
    """Unit vector of a limb hanging down, swung forward by ``swing`` and out by ``abduct``."""
    return np.array([side * math.sin(abduct), math.cos(abduct) * math.cos(swing),
                     math.cos(abduct) * math.sin(swing)])


def body_joints(build: Build, pose: Pose) -> np.ndarray:
    """Joints ``(16, 3)`` in the body frame, before the yaw."""
    J = np.zeros((NUM_JOINTS, 3))
    r = build.head_r
    neck_y = 2 * r + 0.012
    pelvis_y = 1.0 - build.leg
    shoulder_y = neck_y + 0.045
    J[JOINT_INDEX["B_Head"]] = (0, 0, 0)
    J[JOINT_INDEX["B_Neck"]] = (0, neck_y, 0)
    J[JOINT_INDEX["B_Spine"]] = (0, neck_y + 0.055, 0)
    J[JOINT_INDEX["B_Pelvis"]] = (0, pelvis_y, 0)
    thigh = 0.52 * (build.leg - FOOT_HEIGHT)
    shin = 0.48 * (build.leg - FOOT_HEIGHT)
    upper, fore = 0.165 * build.arm, 0.15 * build.arm
    swing = pose.stride * math.sin(pose.phase)
    for side, pre in ((-1, "R_"), (1, "L_")):
        a = swing * (-side)                      # right leg swings with +sin(phase), left opposite
        flex = pose.stride * (0.3 + 1.2 * max(0.0, -math.sin(pose.phase) * (-side)))
        hip = np.array([side * build.hip, pelvis_y + 0.01, 0.0])
        knee = hip + thigh * _limb_dir(side, 0.02, a)
        ankle = knee + shin * _limb_dir(side, -0.01, a - flex)
        J[JOINT_INDEX[pre + "Hip"]], J[JOINT_INDEX[pre + "Knee"]], J[JOINT_INDEX[pre + "Ankle"]] = hip, knee, ankle
        s = pose.arm_swing * math.sin(pose.phase) * side   # arms swing against the legs
        raise_ = pose.raise_left if side > 0 else pose.raise_right
        shoulder = np.array([side * build.shoulder, shoulder_y, 0.0])
        elbow = shoulder + upper * _limb_dir(side, raise_, s)
        wrist = elbow + fore * _limb_dir(side, raise_ * 1.1, s + pose.elbow)
        J[JOINT_INDEX[pre + "Shoulder"]], J[JOINT_INDEX[pre + "Elbow"]], J[JOINT_INDEX[pre + "Wrist"]] = \
            shoulder, elbow, wrist
    # lean: shift everything above the pelvis forward in proportion to its height
    above = J[:, 1] < pelvis_y
    J[above, 2] += (pelvis_y - J[above, 1]) * math.sin(pose.lean)
    return J


def pose_joints(build: Build, pose: Pose) -> np.ndarray:
    """Joints ``(16, 3)`` after the yaw: x image-right, y down, z towards the camera."""
    return yaw_rotate(body_joints(build, pose), pose.yaw)
