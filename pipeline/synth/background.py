"""Backgrounds: textured walls, floors and clutter (RGB); cool, smooth noise (thermal).

A :class:`SceneStyle` is fixed per camera (drawn once from the seed), so each camera
has its own look; every image jitters it. Images are float32 in [0, 1], BGR for RGB.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

from pipeline.synth.traits import Colour, clothing_colour


@dataclass(frozen=True)
class SceneStyle:
    indoor: bool
    wall: Colour
    floor: Colour
    horizon: float            # wall/floor boundary, fraction of the image height
    clutter: int              # mean number of clutter objects
    cast: Colour              # per-camera colour gains (white balance)
    ir_level: float           # mean thermal background level
    ir_gain: float            # thermal contrast of the camera


def _muted(colour: Colour, amount: float) -> Colour:
    """``colour`` pulled towards its own grey by ``amount`` (0: unchanged, 1: grey)."""
    c = np.asarray(colour, np.float64)
    grey = float(c @ (0.114, 0.587, 0.299))
    return tuple(float(v) for v in grey + (1.0 - amount) * (c - grey))


def sample_scene_style(rng: np.random.Generator, indoor: bool) -> SceneStyle:
    """One camera's scene."""
    if indoor:
        wall = tuple(float(v) for v in np.clip(rng.uniform(0.45, 0.85) + rng.normal(0, 0.05, 3), 0, 1))
        floor = tuple(float(v) for v in np.clip(rng.uniform(0.3, 0.7) + rng.normal(0, 0.06, 3), 0, 1))
        cast = tuple(float(v) for v in (rng.uniform(0.8, 0.95), rng.uniform(0.92, 1.02), rng.uniform(1.0, 1.15)))
    else:
        wall = _muted(clothing_colour(rng), rng.uniform(0.4, 0.8)) if rng.random() < 0.6 else (0.35, 0.5, 0.4)
        floor = tuple(float(v) for v in np.clip(rng.uniform(0.35, 0.6) + rng.normal(0, 0.03, 3), 0, 1))
        cast = tuple(float(v) for v in (rng.uniform(0.95, 1.1), rng.uniform(0.95, 1.05), rng.uniform(0.85, 1.0)))
    return SceneStyle(indoor=indoor, wall=wall, floor=floor, horizon=rng.uniform(0.55, 0.8),
                      clutter=int(rng.integers(1, 4)), cast=cast,
                      ir_level=rng.uniform(0.12, 0.3) if indoor else rng.uniform(0.06, 0.2),
                      ir_gain=rng.uniform(0.8, 1.1))


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: Tuple[int, int], channels: int = 1) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid, bicubically enlarged."""
    grid = rng.uniform(-1, 1, (cells[0], cells[1], channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels) if channels > 1 else out.reshape(h, w)


def rgb_background(rng: np.random.Generator, style: SceneStyle, h: int, w: int) -> np.ndarray:
    """A wall above a floor, lit unevenly, with a few blurred objects."""
    img = np.empty((h, w, 3), np.float32)
    horizon = int(round(h * np.clip(style.horizon + rng.normal(0, 0.05), 0.35, 0.9)))
    wall = np.clip(np.asarray(style.wall) + rng.normal(0, 0.04, 3), 0, 1)
    floor = np.clip(np.asarray(style.floor) + rng.normal(0, 0.04, 3), 0, 1)
    img[:horizon] = wall
    img[horizon:] = floor
    # floor texture: tiles (indoor) or a gradient (outdoor)
    if style.indoor and rng.random() < 0.7:
        step = int(rng.integers(6, 16))
        for y in range(horizon + step // 2, h, step):
            cv2.line(img, (0, y), (w - 1, y), tuple(float(c) for c in floor * 0.85), 1, cv2.LINE_AA)
    else:
        ramp = np.linspace(0.9, 1.1, h - horizon, dtype=np.float32)[:, None, None]
        img[horizon:] *= ramp
    # clutter: doors, windows, pillars, bushes
    for _ in range(int(rng.poisson(style.clutter))):
        colour = _muted(clothing_colour(rng), rng.uniform(0.2, 0.7))
        x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 8, max(horizon, 2)))
        if rng.random() < 0.6:
            bw, bh = int(rng.integers(w // 8, w // 2)), int(rng.integers(h // 6, h))
            cv2.rectangle(img, (x0, y0), (x0 + bw, y0 + bh), colour, -1, cv2.LINE_AA)
        else:
            axes = (int(rng.integers(w // 8, w // 3)), int(rng.integers(h // 12, h // 5)))
            cv2.ellipse(img, (x0, y0), axes, 0, 0, 360, colour, -1, cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 2.0))
    img += rng.normal(0, rng.uniform(0.005, 0.03), (h, w, 1)).astype(np.float32)   # surface grain
    # uneven light
    img *= (1.0 + 0.18 * smooth_noise(rng, h, w, (3, 2)))[..., None]
    img += 0.04 * smooth_noise(rng, h, w, (4, 3), channels=3)
    return np.clip(img, 0, 1)


def ir_background(rng: np.random.Generator, style: SceneStyle, h: int, w: int) -> np.ndarray:
    """Cool, dark, smooth thermal background with an occasional warm object."""
    level = style.ir_level + rng.normal(0, 0.03)
    img = np.full((h, w), level, np.float32)
    img += 0.07 * smooth_noise(rng, h, w, (3, 2)) + 0.03 * smooth_noise(rng, h, w, (6, 4))
    horizon = int(round(h * np.clip(style.horizon + rng.normal(0, 0.05), 0.35, 0.9)))
    img[horizon:] += rng.uniform(-0.05, 0.08)
    if rng.random() < 0.25:   # a lamp, a radiator, a parked engine
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(2, w // 4 + 3)), int(rng.integers(2, h // 6 + 3)))
        cv2.ellipse(img, c, axes, 0, 0, 360, float(rng.uniform(0.4, 0.7)), -1, cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1.0, 2.5))
    return np.clip(img, 0, 1)
