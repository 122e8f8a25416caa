"""The ``keypoints`` estimator: heatmaps from keypoints that are already known.

Two sources:

* the ground-truth side file that ``vireid-prep synth`` writes into a dataset root,
  ``vireid_keypoints.json``: ``{"format": "vireid-keypoints/1", "joints": [16 LIP names],
  "images": {relative path: [[x, y, v] x 16]}}`` with v = 0 missing, 1 occluded, 2 visible;
* a COCO-style keypoint file from a user's own pose tool: ``{"images": [{"id", "file_name"}],
  "annotations": [{"image_id", "keypoints": [x, y, v, ...], "score"?}], "categories":
  [{"keypoints": [names]}]}`` whose keypoint names are either the 16 LIP joints or COCO's
  17 body keypoints (mapped by :func:`vireid.pose.convert.lip_from_coco17`). ``file_name``
  is the image's path relative to the dataset root. With several annotations for one
  image the one with the highest ``score`` (else the most labelled joints) is used.

Confidence: 1 for a labelled joint (visible or occluded: its position is known), 0 for a
missing one. An image without an entry is an error naming it, never a silent hole.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Sequence

import numpy as np

from pipeline.estimators.base import EstimatorError, PoseEstimator
from vireid.pose.convert import COCO17_NAMES, lip_from_coco17
from vireid.pose.joints import JOINT_NAMES, NUM_JOINTS

SIDE_FILE = "vireid_keypoints.json"
SIDE_FORMAT = "vireid-keypoints/1"


def _rows_from_xyv(values: Sequence[float], names: Sequence[str], source: Path, key: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1, 3)
    if arr.shape[0] != len(names):
        raise EstimatorError(f"{source}: {key}: {arr.shape[0]} keypoints, expected {len(names)}")
    conf = (arr[:, 2] > 0).astype(np.float64)
    rows = np.concatenate([arr[:, :2], conf[:, None]], axis=1)
    rows[conf == 0, :2] = np.nan
    if tuple(names) == JOINT_NAMES:
        return rows.astype(np.float32)
    if tuple(names) == COCO17_NAMES:
        return lip_from_coco17(rows)
    raise EstimatorError(f"{source}: keypoint names {list(names)} are neither the 16 LIP joints nor COCO's 17")


def load_side_file(path: Path) -> Dict[str, np.ndarray]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EstimatorError(f"{path}: unreadable keypoint file: {exc}") from exc
    if doc.get("format") != SIDE_FORMAT:
        raise EstimatorError(f"{path}: not a {SIDE_FORMAT} file")
    names = tuple(doc.get("joints", ()))
    out = {}
    for rel, rows in doc["images"].items():
        arr = np.asarray([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)
        out[rel] = _rows_from_xyv(arr.reshape(-1), names, path, rel)
    return out


def load_coco_file(path: Path) -> Dict[str, np.ndarray]:
    try:
        doc = json.loads(path.read_text())
        names = tuple(doc["categories"][0]["keypoints"])
        files = {img["id"]: img["file_name"] for img in doc["images"]}
        anns = doc["annotations"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise EstimatorError(f"{path}: not a COCO-style keypoint file: {exc}") from exc
    best: Dict[str, Any] = {}
    for k, ann in enumerate(anns):
        if ann.get("image_id") not in files:
            raise EstimatorError(f"{path}: annotation {k} refers to unknown image_id {ann.get('image_id')!r}")
        rel = files[ann["image_id"]]
        kps = ann.get("keypoints", [])
        rank = (float(ann.get("score", 0.0)), sum(1 for v in kps[2::3] if v > 0))
        if rel not in best or rank > best[rel][0]:
            best[rel] = (rank, kps, k)
    return {rel: _rows_from_xyv(kps, names, path, f"annotation {k}") for rel, (_, kps, k) in best.items()}


class KeypointFileEstimator(PoseEstimator):
    """Serve known keypoints as if estimated (see module docstring)."""

    name = "keypoints"
    batch_size = 256

    def __init__(self, path: "str | Path"):
        self.path = Path(path)
        if not self.path.is_file():
            raise EstimatorError(f"{self.path}: keypoint file not found (synthetic data sets carry {SIDE_FILE} "
                                 f"in their root; otherwise pass --keypoints FILE)")
        with open(self.path, "rb") as fh:
            head = fh.read(4096)
        self.table = load_side_file(self.path) if SIDE_FORMAT.encode() in head else load_coco_file(self.path)
        self._sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()

    def describe(self) -> Dict[str, Any]:
        return {"estimator": self.name, "weights": str(self.path), "weights_sha256": self._sha256}

    def estimate(self, images: Sequence[np.ndarray], paths: Sequence[str]) -> np.ndarray:
        out = np.empty((len(paths), NUM_JOINTS, 3), np.float32)
        for i, rel in enumerate(paths):
            rows = self.table.get(rel)
            if rows is None:
                raise EstimatorError(f"{self.path}: no keypoints for {rel}")
            out[i] = rows
        return out
