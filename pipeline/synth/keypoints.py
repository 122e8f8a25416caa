"""Ground-truth keypoints of the synthetic SYSU-MM01 and RegDB sets: ``vireid_keypoints.json``.

The file sits at the dataset root (scanners ignore root-level files)::

    {
      "format": "vireid-keypoints/1",
      "joints": ["R_Ankle", ..., "L_Wrist"],          # the 16 LIP joints, JOINT_NAMES order
      "images": {
        "cam1/0001/0001.jpg": [[x, y, v], ... 16 rows],
        ...
      }
    }

``images`` has one entry per image, keyed by its path relative to the root ('/'
separators), sorted. ``x`` and ``y`` are floats (2 decimals) in the pixel coordinates of
that image, pixel centres at integers (column, row); ``v`` is 2 for a visible joint, 1
for one occluded by another body part or a carried object, 0 for one outside the image
(its x, y are still the true, outside position). The joints are the very points the
person was drawn from, so they are exact by construction. (The LIP layout writes its
own CSV annotations instead.)
"""
from __future__ import annotations

import json
from typing import Any, Dict, Mapping

import numpy as np

from vireid.pose.joints import JOINT_NAMES, NUM_JOINTS

KEYPOINTS_FILE = "vireid_keypoints.json"
KEYPOINTS_FORMAT = "vireid-keypoints/1"


def keypoints_document(images: Mapping[str, np.ndarray]) -> Dict[str, Any]:
    """``{relative path: (16, 3) array}`` -> the JSON document described above."""
    out: Dict[str, Any] = {}
    for rel in sorted(images):
        kp = np.asarray(images[rel], dtype=np.float64)
        if kp.shape != (NUM_JOINTS, 3):
            raise ValueError(f"{rel}: keypoints of shape {kp.shape}, expected ({NUM_JOINTS}, 3)")
        out[rel] = [[round(float(x), 2), round(float(y), 2), int(v)] for x, y, v in kp]
    return {"format": KEYPOINTS_FORMAT, "joints": list(JOINT_NAMES), "images": out}


def dumps(doc: Mapping[str, Any]) -> str:
    """Compact, deterministic JSON text (one image per line)."""
    lines = [f'{{"format": {json.dumps(doc["format"])},', f' "joints": {json.dumps(doc["joints"])},',
             ' "images": {']
    items = list(doc["images"].items())
    for i, (rel, rows) in enumerate(items):
        sep = "," if i < len(items) - 1 else ""
        lines.append(f"  {json.dumps(rel)}: {json.dumps(rows, separators=(',', ':'))}{sep}")
    lines.append("}}")
    return "\n".join(lines) + "\n"

