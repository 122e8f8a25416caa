"""One synthetic image: background, person, camera effects -> uint8 BGR + keypoints.

Infrared images are rendered in one grey channel and returned as three identical
channels, like real IR crops.
"""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

from pipeline.synth.background import SceneStyle, ir_background, rgb_background
from pipeline.synth.render import Placement, render_person
from pipeline.synth.skeleton import Pose
from pipeline.synth.traits import Traits


def sample_placement(rng: np.random.Generator, h: int, w: int, framing: str = "full") -> Placement:
    """Where the person stands in an ``h x w`` image.

    ``full``: a pedestrian-detector crop (whole body, small jitter); ``upper``: the
    upper body, legs cut by the bottom edge; ``loose``: the whole body, small, with
    margins (LIP-like photos).
    """
    if framing == "full":
        scale = h * rng.uniform(0.84, 0.95)
        top = rng.uniform(0.015, 0.98 - scale / h) * h if scale / h < 0.965 else 0.01 * h
        return Placement(scale=scale, cx=w * (0.5 + rng.uniform(-0.07, 0.07)), top=top)
    if framing == "upper":
        scale = h * rng.uniform(1.3, 1.9)
        return Placement(scale=scale, cx=w * (0.5 + rng.uniform(-0.1, 0.1)), top=h * rng.uniform(0.03, 0.12))
    if framing == "loose":
        scale = h * rng.uniform(0.55, 0.8)
        top = h * rng.uniform(0.02, 0.97 - scale / h)
        return Placement(scale=scale, cx=w * rng.uniform(0.3, 0.7), top=top)
    raise ValueError(f"unknown framing {framing!r}")


def render_image(rng: np.random.Generator, traits: Traits, style: SceneStyle, modality: str,
                 size: Tuple[int, int], pose: Pose, place: Placement) -> Tuple[np.ndarray, np.ndarray]:
    """Render one ``size = (h, w)`` image; returns ``(uint8 (h, w, 3) BGR, keypoints (16, 3))``."""
    h, w = size
    if modality == "rgb":
        canvas = rgb_background(rng, style, h, w)
        kp = render_person(canvas, traits, pose, place, "rgb")
        canvas *= np.asarray(style.cast, np.float32) * rng.uniform(0.75, 1.2)
        canvas = np.clip(canvas, 0, 1) ** rng.uniform(0.85, 1.2)
        canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.35, 0.9))
        canvas += rng.normal(0, rng.uniform(0.004, 0.02), canvas.shape).astype(np.float32)
    elif modality == "ir":
        canvas = ir_background(rng, style, h, w)[..., None]
        kp = render_person(canvas, traits, pose, place, "ir", gain=rng.uniform(0.88, 1.05))
        canvas = canvas * style.ir_gain * rng.uniform(0.85, 1.15) + rng.uniform(-0.05, 0.05)
        canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.6, 1.2))
        canvas += rng.normal(0, rng.uniform(0.006, 0.025), canvas.shape[:2]).astype(np.float32)
        canvas = np.repeat(canvas.reshape(h, w, 1), 3, axis=2)
    else:
        raise ValueError(f"unknown modality {modality!r}")
    img = np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)
    return img, kp
