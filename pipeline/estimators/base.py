"""The small common interface of the pose estimators behind ``vireid-prep heatmaps``.

An estimator maps person crops to the 16 LIP joints (:mod:`vireid.pose.joints`):
``estimate(images, paths) -> (N, 16, 3)`` float32 rows ``(x, y, confidence)`` in the pixel
coordinates of each input image (x = column, y = row, pixel centres at integers),
confidence in [0, 1]; a joint the estimator did not find is ``(nan, nan, 0)``. The cache
renders its Gaussian heatmaps from these on its own grid, so every estimator yields maps
of the same form, and stores the confidences as per-joint weights.

``describe()`` returns what the cache records about the estimator: its name, the
weights file and its sha256 (empty for estimators without weights), and the
parameters that change its output.
"""
from __future__ import annotations

import abc
from typing import Any, Dict, Sequence

import numpy as np


class EstimatorError(RuntimeError):
    """An estimator cannot be built or run (missing weights, missing optional package...)."""


class PoseEstimator(abc.ABC):
    #: registry name, e.g. "lip", "blazepose", "keypoints"
    name: str = ""
    #: images per forward pass that suit this estimator (the job batches to it)
    batch_size: int = 32

    @abc.abstractmethod
    def describe(self) -> Dict[str, Any]:
        """``{"estimator": name, "weights": path or "", "weights_sha256": hex or "", ...}``."""

    @abc.abstractmethod
    def estimate(self, images: Sequence[np.ndarray], paths: Sequence[str]) -> np.ndarray:
        """BGR uint8 crops (H_i x W_i x 3) and their manifest paths -> (N, 16, 3) float32."""

    def close(self) -> None:
        """Release resources (sessions, graphs)."""
