"""Synthetic LIP (pose track): ``TrainVal_images/{train,val}_images/<name>.jpg`` and the CSVs.

Folder and CSV paths come from ``data_manifests/lip.yaml``. Each CSV has no header and
one row per image, sorted by name: ``name.jpg,x1,y1,o1,...,x16,y16,o16`` in the
JOINT_NAMES order; x, y are integer pixel coordinates (column, row), o is 1 for an
occluded joint and 0 for a visible one; a joint outside the image is ``nan,nan,nan``.
Names look like the real ones (``<6 digits>_<6 digits>.jpg``). ``ids`` distinct people
are split into train (~80 %) and val persons; each appears in ``images_per_camera``
photos of varied size, framing (whole body, upper body, small with margins) and pose.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import numpy as np
from tqdm import tqdm

from pipeline.synth import randomness as R
from pipeline.synth.background import sample_scene_style
from pipeline.synth.crop import render_image, sample_placement
from pipeline.synth.output import encode_image, write_file
from pipeline.synth.render import OCCLUDED, OUTSIDE
from pipeline.synth.skeleton import Pose
from pipeline.synth.summary import Written
from pipeline.synth.traits import sample_traits
from vireid.data.spec import DatasetSpec, load_spec

LAYOUT = "lip"
DEFAULT_IMAGES_PER_CAMERA = 5
DEFAULT_SIZE = (160, 112)
VAL_FRACTION = 0.2
FRAMINGS = ("full", "upper", "loose")
FRAMING_P = (0.5, 0.3, 0.2)


def sample_free_pose(rng: np.random.Generator) -> Pose:
    """Any view, walking or standing, arms sometimes raised or bent."""
    stride = 0.0 if rng.random() < 0.3 else rng.uniform(0.1, 0.6)

    def arm() -> float:
        return rng.uniform(0.6, 2.7) if rng.random() < 0.25 else rng.uniform(0.03, 0.35)

    return Pose(yaw=rng.uniform(-math.pi, math.pi), phase=rng.uniform(0, 2 * math.pi), stride=stride,
                arm_swing=stride * rng.uniform(0.3, 1.0), elbow=rng.uniform(0.0, 1.6),
                raise_left=arm(), raise_right=arm(), lean=rng.uniform(-0.05, 0.15))


def image_names(seed: int, n: int) -> List[str]:
    """``n`` distinct LIP-style names ``<6 digits>_<6 digits>.jpg``, in person order."""
    rng = R.rng_for(seed, LAYOUT, R.NAMES, 0)
    seen: Set[str] = set()
    names: List[str] = []
    while len(names) < n:
        a, b = rng.integers(100000, 1000000, size=2)
        name = f"{a:06d}_{b:06d}.jpg"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def csv_row(name: str, kp: np.ndarray) -> str:
    """One annotation row (see module doc) from keypoints ``(16, 3)`` (x, y, visibility)."""
    fields = [name]
    for x, y, v in kp:
        if v == OUTSIDE:
            fields += ["nan", "nan", "nan"]
        else:
            fields += [str(int(round(x))), str(int(round(y))), "1" if v == OCCLUDED else "0"]
    return ",".join(fields)


def write_lip(root: Path, ids: int, seed: int, images_per_camera: Optional[int] = None,
              image_size: Optional[Tuple[int, int]] = None, progress: bool = False,
              spec: Optional[DatasetSpec] = None) -> Written:
    """Write a synthetic LIP pose tree under ``root``."""
    spec = spec or load_spec(LAYOUT)
    if ids < 2:
        raise ValueError(f"LIP needs at least 2 people (train and val), got {ids}")
    per_person = images_per_camera or DEFAULT_IMAGES_PER_CAMERA
    h0, w0 = image_size or DEFAULT_SIZE
    n_val = max(1, round(VAL_FRACTION * ids))
    val_people = set(int(k) for k in R.rng_for(seed, LAYOUT, R.SPLIT, 0).choice(ids, size=n_val, replace=False))
    names = image_names(seed, ids * per_person)
    splits = spec.layout["splits"]
    rows: Dict[str, List[str]] = {s: [] for s in splits}
    per_split = {s: {"ids": 0, "rgb": 0, "ir": 0} for s in splits}
    plan = [(k, i) for k in range(ids) for i in range(per_person)]
    traits = [sample_traits(R.rng_for(seed, LAYOUT, R.TRAITS, k)) for k in range(ids)]
    for k, i in tqdm(plan, disable=not progress, desc="synth lip", unit="img"):
        split = "val" if k in val_people else "train"
        rng = R.rng_for(seed, LAYOUT, R.IMAGE, k, i)
        h = int(round(h0 * rng.uniform(0.75, 1.4)))
        w = int(round(w0 * rng.uniform(0.75, 1.4)))
        framing = str(rng.choice(FRAMINGS, p=FRAMING_P))
        style = sample_scene_style(rng, indoor=bool(rng.random() < 0.5))
        img, kp = render_image(rng, traits[k], style, "rgb", (h, w), sample_free_pose(rng),
                               sample_placement(rng, h, w, framing))
        name = names[k * per_person + i]
        write_file(root / splits[split]["images"] / name, encode_image(img, spec.image_ext))
        rows[split].append(csv_row(name, kp))
        per_split[split]["rgb"] += 1
        if i == 0:
            per_split[split]["ids"] += 1
    for split, paths in splits.items():
        write_file(root / paths["annotations"], "".join(r + "\n" for r in sorted(rows[split])))
    counts = {"rgb": sum(s["rgb"] for s in per_split.values())}
    expected = {"images": {s: per_split[s]["rgb"] for s in splits}}
    return Written(images=counts, splits=per_split, expected=expected, image_size=(h0, w0))
