"""Draw a synthetic person with anti-aliased OpenCV primitives from its 16 joints.

Body parts (limbs, torso, head, hair, shoes, bags) are drawn far to near (painter's
order by depth after the yaw) as coverage masks, each composited with its material:
a colour (RGB) or a thermal grey level (IR), the top possibly patterned. The joints the
parts are drawn from are returned as the ground-truth keypoints, with a visibility
computed from the masks: 2 visible, 1 occluded (covered by a later part that does not
contain the joint), 0 outside the image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, FrozenSet, List, Sequence

import cv2
import numpy as np

from pipeline.synth.skeleton import Pose, pose_joints, yaw_rotate
from pipeline.synth.traits import Traits
from vireid.pose.joints import JOINT_INDEX, NUM_JOINTS

SHIFT = 4                 # sub-pixel bits for OpenCV drawing
_ONE = 1 << SHIFT
VISIBLE, OCCLUDED, OUTSIDE = 2, 1, 0


@dataclass(frozen=True)
class Placement:
    """Where the body frame lands in the image."""

    scale: float   # body height in pixels
    cx: float      # image x of the body axis
    top: float     # image y of the top of the head


@dataclass
class _Part:
    depth: float
    material: str
    owns: FrozenSet[int]
    draw: Callable[[np.ndarray], None]


def _fix(p: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(p, dtype=np.float64) * _ONE).astype(np.int32)


def _poly(mask: np.ndarray, pts: Sequence[np.ndarray]) -> None:
    cv2.fillPoly(mask, [_fix(np.asarray(pts)).reshape(-1, 1, 2)], 255, cv2.LINE_AA, SHIFT)


def _disc(mask: np.ndarray, c: np.ndarray, r: float) -> None:
    cv2.circle(mask, tuple(int(v) for v in _fix(c)), max(int(round(r * _ONE)), 1), 255, -1, cv2.LINE_AA, SHIFT)


def _ellipse(mask: np.ndarray, c: np.ndarray, axes: Sequence[float], angle: float = 0.0) -> None:
    cv2.ellipse(mask, tuple(int(v) for v in _fix(c)),
                tuple(max(int(round(a * _ONE)), 1) for a in axes), angle, 0, 360, 255, -1, cv2.LINE_AA, SHIFT)


def _limb(mask: np.ndarray, a: np.ndarray, b: np.ndarray, wa: float, wb: float) -> None:
    """A tapered segment from ``a`` (width ``wa``) to ``b`` (width ``wb``) with round ends."""
    d = b - a
    n = float(np.hypot(*d))
    if n > 1e-6:
        perp = np.array([-d[1], d[0]]) / n
        _poly(mask, [a + perp * wa / 2, b + perp * wb / 2, b - perp * wb / 2, a - perp * wa / 2])
    _disc(mask, a, wa / 2)
    _disc(mask, b, wb / 2)


def _square_wave(t: np.ndarray, period_px: float) -> np.ndarray:
    """1 on the second half of each period, with one-pixel soft edges."""
    frac = t - np.floor(t)
    return np.clip((np.abs(frac - 0.5) - 0.25) * period_px + 0.5, 0.0, 1.0)


def pattern_field(traits: Traits, h: int, w: int, origin: np.ndarray, scale: float) -> np.ndarray:
    """The top's pattern (0: base colour, 1: second colour) over the whole image, ``(h, w)``."""
    if traits.pattern == "plain":
        return np.zeros((h, w), np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xs - origin[0]) / scale
    v = (ys - origin[1]) / scale
    period = traits.pattern_period
    ppx = period * scale
    if traits.pattern == "hstripes":
        return _square_wave(v / period, ppx)
    if traits.pattern == "vstripes":
        return _square_wave(u / period, ppx)
    if traits.pattern == "diagonal":
        a = traits.pattern_angle
        return _square_wave((u * math.cos(a) + v * math.sin(a)) / period, ppx)
    if traits.pattern == "checks":
        pa, pb = _square_wave(u / period, ppx), _square_wave(v / period, ppx)
        return pa + pb - 2 * pa * pb
    # dots
    fu = (u / period) - np.floor(u / period) - 0.5
    fv = (v / period) - np.floor(v / period) - 0.5
    dist = np.sqrt(fu * fu + fv * fv) * ppx
    return np.clip(0.28 * ppx - dist + 0.5, 0.0, 1.0)


def _materials(traits: Traits, modality: str, gain: float) -> dict:
    if modality == "rgb":
        m = dict(skin=traits.skin, hair=traits.hair, top=traits.top, top2=traits.top2, bottom=traits.bottom,
                 shoes=traits.shoes, bag=traits.bag_colour)
    else:
        m = dict(skin=(traits.skin_ir,), hair=(traits.hair_ir,), top=(traits.top_ir,), top2=(traits.top2_ir,),
                 bottom=(traits.bottom_ir,), shoes=(traits.shoes_ir,), bag=(traits.bag_ir,))
    return {k: np.asarray(v, np.float32) * gain for k, v in m.items()}


def _box_hull(centre: np.ndarray, half: Sequence[float], yaw: float, place: Placement) -> np.ndarray:
    """Image outline (convex hull) of a body-frame box, and its depth after the yaw."""
    corners = np.array([[sx * half[0], sy * half[1], sz * half[2]]
                        for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) + centre
    pts = yaw_rotate(corners, yaw)
    img = np.stack([place.cx + place.scale * pts[:, 0], place.top + place.scale * pts[:, 1]], axis=1)
    return cv2.convexHull(img.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def render_person(canvas: np.ndarray, traits: Traits, pose: Pose, place: Placement, modality: str,
                  gain: float = 1.0) -> np.ndarray:
    """Draw a person onto ``canvas`` (float32 ``(h, w, c)``, changed in place).

    ``modality`` is ``'rgb'`` (c = 3, BGR) or ``'ir'`` (c = 1). Returns the keypoints
    ``(16, 3)``: image x, y (pixel centres at integer coordinates) and visibility
    (:data:`VISIBLE`, :data:`OCCLUDED` or :data:`OUTSIDE`).
    """
    h, w = canvas.shape[:2]
    b, S, yaw = traits.build, place.scale, pose.yaw
    J3 = pose_joints(b, pose)
    P = np.stack([place.cx + S * J3[:, 0], place.top + S * J3[:, 1]], axis=1)
    Z = J3[:, 2]
    I = JOINT_INDEX
    cos_y, sin_y = math.cos(yaw), math.sin(yaw)
    L = traits.build.limb
    parts: List[_Part] = []

    def add(depth: float, material: str, owns: Sequence[str], draw: Callable[[np.ndarray], None]) -> None:
        parts.append(_Part(depth, material, frozenset(I[n] for n in owns), draw))

    def half_width(wid: float, dep: float) -> float:
        return S * math.hypot(wid * cos_y, dep * sin_y)

    # ---- legs (always behind the lower torso), trousers or bare shins, shoes
    for pre in ("R_", "L_"):
        hip, knee, ankle = P[I[pre + "Hip"]], P[I[pre + "Knee"]], P[I[pre + "Ankle"]]
        depth = float(Z[[I[pre + "Hip"], I[pre + "Knee"], I[pre + "Ankle"]]].mean()) - 0.3
        own = (pre + "Hip", pre + "Knee", pre + "Ankle", "B_Pelvis")
        thigh_w, knee_w, ankle_w = 0.078 * L * S, 0.056 * L * S, 0.04 * L * S
        if traits.bottom_kind == "trousers":
            add(depth, "bottom", own, lambda m, hip=hip, knee=knee, ankle=ankle, a=thigh_w, k=knee_w, c=ankle_w: (
                _limb(m, hip, knee, a, k), _limb(m, knee, ankle, k, c)))
        else:
            add(depth, "skin", own, lambda m, hip=hip, knee=knee, ankle=ankle, a=thigh_w, k=knee_w, c=ankle_w: (
                _limb(m, hip, knee, a * 0.9, k * 0.9), _limb(m, knee, ankle, k * 0.9, c * 0.9)))
            if traits.bottom_kind == "shorts":
                end = hip + 0.6 * (knee - hip)
                add(depth + 1e-4, "bottom", own[:1] + ("B_Pelvis",),
                    lambda m, hip=hip, end=end, a=thigh_w: _limb(m, hip, end, a * 1.08, a * 0.95))
        fwd = np.array([sin_y, 0.0]) * 0.035 * S
        add(depth + 2e-4, "shoes", (pre + "Ankle",),
            lambda m, ankle=ankle, fwd=fwd: _ellipse(m, ankle + fwd * 0.6 + np.array([0, 0.018 * S]),
                                                    (0.022 * S + abs(fwd[0]), 0.018 * S)))

    # ---- torso: hips patch (bottom) and the top, centred on the projected spine
    cs = (P[I["R_Shoulder"]] + P[I["L_Shoulder"]]) / 2
    ch = (P[I["R_Hip"]] + P[I["L_Hip"]]) / 2
    hs = half_width(b.shoulder + 0.012, b.depth)
    hwst = half_width(b.shoulder * (0.72 if traits.female else 0.82), b.depth * 0.85)
    hh = half_width(b.hip + 0.038, b.depth * 0.9)
    cw = cs + 0.62 * (ch - cs)
    own_torso = ("B_Pelvis", "B_Spine", "B_Neck", "R_Hip", "L_Hip", "R_Shoulder", "L_Shoulder")
    add(-0.1, "bottom", ("R_Hip", "L_Hip", "B_Pelvis"), lambda m: _poly(m, [
        ch + (-hh, -0.035 * S), ch + (hh, -0.035 * S), ch + (hh * 0.95, 0.075 * S), ch + (-hh * 0.95, 0.075 * S)]))
    if traits.bottom_kind == "skirt":
        add(-0.05, "bottom", ("R_Hip", "L_Hip", "B_Pelvis"), lambda m: _poly(m, [
            ch + (-hh, -0.03 * S), ch + (hh, -0.03 * S), ch + (hh * 1.5, 0.2 * S), ch + (-hh * 1.5, 0.2 * S)]))
    neck = P[I["B_Neck"]]
    add(-0.01, "skin", ("B_Neck", "B_Spine"), lambda m: _limb(m, neck, cs, 0.05 * S, 0.055 * S))
    add(0.0, "top", own_torso, lambda m: _poly(m, [
        cs + (-0.45 * hs, -0.022 * S), cs + (0.45 * hs, -0.022 * S), cs + (hs, 0.0), cw + (hwst, 0.0),
        ch + (hh, 0.012 * S), ch + (-hh, 0.012 * S), cw + (-hwst, 0.0), cs + (-hs, 0.0)]))

    # ---- arms, sleeves, hands
    for pre in ("R_", "L_"):
        sh, el, wr = P[I[pre + "Shoulder"]], P[I[pre + "Elbow"]], P[I[pre + "Wrist"]]
        depth = float(Z[[I[pre + "Shoulder"], I[pre + "Elbow"], I[pre + "Wrist"]]].mean()) + 0.012
        own = (pre + "Shoulder", pre + "Elbow", pre + "Wrist")
        uw, ew, ww = 0.05 * L * S, 0.04 * L * S, 0.032 * L * S
        if traits.long_sleeves:
            add(depth, "top", own, lambda m, sh=sh, el=el, wr=wr, a=uw, e=ew, c=ww: (
                _limb(m, sh, el, a, e), _limb(m, el, wr, e, c)))
        else:
            add(depth, "skin", own, lambda m, sh=sh, el=el, wr=wr, a=uw, e=ew, c=ww: (
                _limb(m, sh, el, a * 0.85, e * 0.85), _limb(m, el, wr, e * 0.85, c * 0.85)))
            mid = sh + 0.5 * (el - sh)
            add(depth + 1e-4, "top", own[:1], lambda m, sh=sh, mid=mid, a=uw: _limb(m, sh, mid, a * 1.1, a * 1.05))
        d = wr - el
        d = d / max(float(np.hypot(*d)), 1e-6)
        add(depth + 2e-4, "skin", (pre + "Wrist",), lambda m, wr=wr, d=d: _disc(m, wr + d * 0.016 * S, 0.021 * S))

    # ---- carried objects
    side = traits.bag_side
    if traits.bag == "backpack":
        centre = np.array([0.0, J3[I["B_Spine"], 1] + 0.1, -(b.depth + 0.045)])
        hull = _box_hull(centre, (b.shoulder * 0.75, 0.12, 0.045), yaw, place)
        add(float(yaw_rotate(centre, yaw)[2]), "bag", (), lambda m, hull=hull: _poly(m, hull))
        if cos_y > 0.3:   # straps seen from the front
            for pre in ("R_", "L_"):
                s = P[I[pre + "Shoulder"]]
                add(0.001, "bag", (pre + "Shoulder", "B_Spine"),
                    lambda m, s=s: _limb(m, s + ((cs - s) * 0.35), s + (cs - s) * 0.3 + (0, 0.17 * S),
                                         0.022 * S, 0.02 * S))
    elif traits.bag == "shoulder":
        centre = np.array([side * (b.hip + 0.075), J3[I["B_Pelvis"], 1] - 0.02, 0.01])
        hull = _box_hull(centre, (0.025, 0.07, 0.09), yaw, place)
        strap_from = P[I["L_Shoulder" if side < 0 else "R_Shoulder"]]
        top_c = yaw_rotate(centre - np.array([0, 0.07, 0]), yaw)
        strap_to = np.array([place.cx + S * top_c[0], place.top + S * top_c[1]])
        add(0.002, "bag", ("B_Spine", "R_Shoulder", "L_Shoulder"),
            lambda m: _limb(m, strap_from, strap_to, 0.018 * S, 0.018 * S))
        add(float(yaw_rotate(centre, yaw)[2]), "bag", (), lambda m, hull=hull: _poly(m, hull))
    elif traits.bag == "handbag":
        pre = "L_" if side > 0 else "R_"
        body_wrist = yaw_rotate(J3[I[pre + "Wrist"]], -yaw)
        centre = body_wrist + np.array([side * 0.01, 0.07, 0.0])
        hull = _box_hull(centre, (0.02, 0.05, 0.065), yaw, place)
        add(float(Z[I[pre + "Wrist"]]) + 0.013, "bag", (pre + "Wrist",), lambda m, hull=hull: _poly(m, hull))

    # ---- head: long hair behind, skull in hair colour, face when it faces the camera
    r = b.head_r * S
    hc = P[I["B_Head"]] + np.array([0.0, r])
    if traits.hair_long:
        add(-0.06 * cos_y, "hair", ("B_Head", "B_Neck"), lambda m: _poly(m, [
            hc + (-0.95 * r, 0), hc + (0.95 * r, 0), hc + (1.05 * r, 2.2 * r), hc + (-1.05 * r, 2.2 * r)]))
    add(1.0, "hair", ("B_Head", "B_Neck"), lambda m: _ellipse(m, hc + (0, -0.04 * r), (0.9 * r, 1.0 * r)))
    if cos_y > -0.3:
        face_c = hc + np.array([sin_y * 0.28 * r, 0.2 * r])
        face_ax = (0.7 * r * (0.55 + 0.45 * abs(cos_y)), 0.78 * r)
        add(1.0, "skin", ("B_Head", "B_Neck"), lambda m: _ellipse(m, face_c, face_ax))
    elif not traits.hair_long:   # a glimpse of the nape below short hair
        add(1.0, "skin", ("B_Neck",), lambda m: _ellipse(m, hc + (0, 0.78 * r), (0.4 * r, 0.22 * r)))

    # ---- composite far to near; keep masks for the occlusion test
    if canvas.shape[2] != (3 if modality == "rgb" else 1):
        raise ValueError(f"a {modality} canvas needs {3 if modality == 'rgb' else 1} channel(s), got {canvas.shape}")
    mats = _materials(traits, modality, gain)
    top_fill = None
    if traits.pattern != "plain":
        p = pattern_field(traits, h, w, cs, S)[..., None]
        top_fill = mats["top"] * (1 - p) + mats["top2"] * p
    order = sorted(range(len(parts)), key=lambda i: (parts[i].depth, i))
    masks: List[_Mask] = []
    mask = np.zeros((h, w), np.uint8)
    for i in order:
        part = parts[i]
        part.draw(mask)
        x, y, bw, bh = cv2.boundingRect(mask)          # composite only where the part is
        sub = mask[y:y + bh, x:x + bw]
        alpha = (sub.astype(np.float32) * (1.0 / 255.0))[..., None]
        fill = top_fill[y:y + bh, x:x + bw] if (part.material == "top" and top_fill is not None) \
            else mats[part.material]
        region = canvas[y:y + bh, x:x + bw]
        region *= 1.0 - alpha
        region += alpha * fill
        masks.append(_Mask(x, y, sub.copy()))
        sub[:] = 0
    ordered = [parts[i] for i in order]
    return _keypoints(P, ordered, masks, h, w)


@dataclass(frozen=True)
class _Mask:
    """A part's coverage: the bounding box's corner and the mask inside it."""

    x: int
    y: int
    mask: np.ndarray

    def covers(self, x: int, y: int) -> bool:
        u, v = x - self.x, y - self.y
        return 0 <= v < self.mask.shape[0] and 0 <= u < self.mask.shape[1] and self.mask[v, u] > 127


def _keypoints(P: np.ndarray, parts: Sequence[_Part], masks: Sequence[_Mask], h: int, w: int) -> np.ndarray:
    kp = np.zeros((NUM_JOINTS, 3))
    kp[:, :2] = P
    for j in range(NUM_JOINTS):
        x, y = int(round(P[j, 0])), int(round(P[j, 1]))
        if not (0 <= x < w and 0 <= y < h) or not (0 <= P[j, 0] <= w - 1 and 0 <= P[j, 1] <= h - 1):
            kp[j, 2] = OUTSIDE
            continue
        first = next((k for k, part in enumerate(parts) if j in part.owns), None)
        covered = first is not None and any(
            j not in parts[k].owns and masks[k].covers(x, y) for k in range(first + 1, len(parts)))
        kp[j, 2] = OCCLUDED if covered else VISIBLE
    return kp
