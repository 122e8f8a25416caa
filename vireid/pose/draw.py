"""Pictures for people: joints, skeleton and heatmaps over a crop."""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from vireid.pose.joints import JOINT_COLOURS, SKELETON


def draw_skeleton(image_bgr: np.ndarray, keypoints: np.ndarray, confidence: Optional[np.ndarray] = None,
                  radius: int = 3, thickness: int = 2) -> np.ndarray:
    """Copy of ``image_bgr`` with the 16 joints (``(16, 2)`` pixels, NaN = missing) and bones drawn.
    Right-side joints blue, left orange, the body axis green (``JOINT_COLOURS``)."""
    out = image_bgr.copy()
    kps = np.asarray(keypoints, dtype=np.float64)
    ok = np.isfinite(kps).all(axis=1)
    if confidence is not None:
        ok &= np.asarray(confidence) > 0
    pts = [(int(round(x)), int(round(y))) if good else None for (x, y), good in zip(kps, ok)]
    for a, b in SKELETON:
        if pts[a] is not None and pts[b] is not None:
            cv2.line(out, pts[a], pts[b], (255, 255, 255), thickness, cv2.LINE_AA)
    for j, p in enumerate(pts):
        if p is not None:
            cv2.circle(out, p, radius, JOINT_COLOURS[j], -1, cv2.LINE_AA)
    return out


def overlay_heatmaps(image_bgr: np.ndarray, heatmaps: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """Blend the max over joint maps (``(J, h, w)`` in [0, 1], any resolution) as a colour map."""
    merged = np.asarray(heatmaps, dtype=np.float32).max(axis=0)
    h, w = image_bgr.shape[:2]
    up = cv2.resize(merged, (w, h), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap(np.clip(up * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    weight = (np.clip(up, 0, 1) * alpha)[..., None]
    return (image_bgr * (1 - weight) + colour * weight).astype(np.uint8)
