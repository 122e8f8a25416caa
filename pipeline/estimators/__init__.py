"""Pose estimators for ``vireid-prep heatmaps`` (interface: :mod:`pipeline.estimators.base`).

* ``lip`` - GCCPM pretrained on LIP (the paper's ref. [34]); weights from ``--weights``.
* ``blazepose`` - mediapipe 0.10.21's BlazePose, bundled in its wheel (optional extra).
* ``keypoints`` - known keypoints: the synthetic data's side file or a COCO-style JSON.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from pipeline.estimators.base import EstimatorError, PoseEstimator
from vireid.cache.format import ESTIMATOR_NAMES as ESTIMATORS


def build_estimator(name: str, *, root: Path, weights: Optional[Path] = None, device: str = "cpu",
                    keypoints: Optional[Path] = None, batch_size: Optional[int] = None,
                    size: Optional[int] = None) -> PoseEstimator:
    """Construct an estimator by name; raises :class:`EstimatorError` with what is missing.

    ``size``: the ``lip`` estimator's square input side (default: the checkpoint's own).
    """
    if name == "lip":
        if weights is None:
            raise EstimatorError("--estimator lip needs --weights PATH: the GCCPM LIP checkpoint "
                                 "(the public {'state_dict': ...} file, or one made by `vireid-prep train-estimator`)")
        from pipeline.estimators.lip import LipEstimator
        est: PoseEstimator = LipEstimator(weights, device=device, size=size)
    elif name in ESTIMATORS and size is not None:
        raise EstimatorError(f"--estimator-size is an option of the lip estimator, not of {name}")
    elif name == "blazepose":
        from pipeline.estimators.blazepose import BlazePoseEstimator
        est = BlazePoseEstimator()
    elif name == "keypoints":
        from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator
        est = KeypointFileEstimator(keypoints or Path(root) / SIDE_FILE)
    else:
        raise EstimatorError(f"unknown estimator {name!r}: choose one of {', '.join(ESTIMATORS)}")
    if batch_size:
        est.batch_size = batch_size
    return est


__all__ = ["ESTIMATORS", "EstimatorError", "PoseEstimator", "build_estimator"]
