"""Synthetic SYSU-MM01: ``camN/<4-digit id>/<4-digit>.jpg``, ``exp/{train,val,test}_id.txt``.

Camera names, modalities, indoor flags, the id-list paths and the file patterns come
from ``data_manifests/sysu.yaml``. Like the real set, id numbers skip values, and not
every identity is seen by every camera: each has at least one RGB and one IR camera,
and about a quarter are never seen indoors. Crop sizes vary around the base size.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from pipeline.synth import randomness as R
from pipeline.synth.background import sample_scene_style
from pipeline.synth.crop import render_image, sample_placement
from pipeline.synth.keypoints import KEYPOINTS_FILE, dumps, keypoints_document
from pipeline.synth.output import encode_image, write_file
from pipeline.synth.skeleton import sample_walking_pose
from pipeline.synth.summary import Written
from pipeline.synth.traits import sample_traits
from vireid.data.spec import Camera, DatasetSpec, load_spec

LAYOUT = "sysu"
DEFAULT_IMAGES_PER_CAMERA = 4
DEFAULT_SIZE = (128, 64)
MIN_IDS = 4
SPLIT_FRACTIONS = {"val": 0.15, "test": 0.25}   # the rest is train


def id_numbers(seed: int, n: int) -> List[int]:
    """``n`` sorted, distinct, non-contiguous id numbers (1-based, like the real set)."""
    rng = R.rng_for(seed, LAYOUT, R.SPLIT, 0)
    pool = n + max(2, n // 4)
    if pool > 9999:
        raise ValueError(f"SYSU-MM01 ids are 4-digit folder names: {n} identities is too many")
    return sorted(int(v) + 1 for v in rng.choice(pool, size=n, replace=False))


def split_ids(seed: int, ids: Sequence[int], splits: Sequence[str]) -> Dict[str, List[int]]:
    """Assign ids to ``splits`` (e.g. train, val, test): ~60/15/25 %, at least 2 test and 1 val id."""
    n = len(ids)
    n_test = max(2, round(SPLIT_FRACTIONS["test"] * n))
    n_val = max(1, round(SPLIT_FRACTIONS["val"] * n))
    if n - n_test - n_val < 1:
        raise ValueError(f"SYSU-MM01 needs at least {MIN_IDS} identities (train, val and 2 test), got {n}")
    perm = R.rng_for(seed, LAYOUT, R.SPLIT, 1).permutation(n)
    sizes = {"test": n_test, "val": n_val}
    out: Dict[str, List[int]] = {}
    start = 0
    for split in splits:
        size = sizes.get(split, n - n_test - n_val)
        out[split] = sorted(ids[i] for i in perm[start:start + size])
        start += size
    return out


def cameras_of_identity(rng: np.random.Generator, cameras: Sequence[Camera]) -> List[Camera]:
    """Which cameras see one identity: at least one RGB and one IR; some never indoors."""
    indoor_ok = rng.random() > 0.25
    available = [c for c in cameras if indoor_ok or not c.indoor]
    chosen = [c for c in available if rng.random() < 0.75]
    for modality in ("rgb", "ir"):
        if not any(c.modality == modality for c in chosen):
            options = [c for c in available if c.modality == modality]
            chosen.append(options[int(rng.integers(len(options)))])
    return sorted(chosen, key=lambda c: c.index)


def write_sysu(root: Path, ids: int, seed: int, images_per_camera: Optional[int] = None,
               image_size: Optional[Tuple[int, int]] = None, progress: bool = False,
               spec: Optional[DatasetSpec] = None, ir_levels: str = "dye") -> Written:
    """Write a synthetic SYSU-MM01 tree under ``root``."""
    spec = spec or load_spec(LAYOUT)
    per_cam = images_per_camera or DEFAULT_IMAGES_PER_CAMERA
    h0, w0 = image_size or DEFAULT_SIZE
    if ids < MIN_IDS:
        raise ValueError(f"SYSU-MM01 needs at least {MIN_IDS} identities (train, val and 2 test), got {ids}")
    numbers = id_numbers(seed, ids)
    lists = split_ids(seed, numbers, list(spec.layout["id_lists"]))
    split_of = {pid: s for s, members in lists.items() for pid in members}

    styles, yaw_mode = {}, {}
    for cam in spec.cameras:
        rng = R.rng_for(seed, LAYOUT, R.SCENE, cam.index)
        styles[cam.name] = sample_scene_style(rng, cam.indoor)
        yaw_mode[cam.name] = float(rng.choice([0.0, math.pi / 2, -math.pi / 2, 0.6, -0.6]))
    plan = []
    for k, pid in enumerate(numbers):
        cams = cameras_of_identity(R.rng_for(seed, LAYOUT, R.COVERAGE, k), spec.cameras)
        plan.extend((k, pid, cam, i) for cam in cams for i in range(1, per_cam + 1))
    traits = [sample_traits(R.rng_for(seed, LAYOUT, R.TRAITS, k), ir_levels) for k in range(ids)]

    keypoints: Dict[str, np.ndarray] = {}
    counts = {"rgb": 0, "ir": 0}
    per_split = {s: {"ids": len(m), "rgb": 0, "ir": 0} for s, m in lists.items()}
    for k, pid, cam, i in tqdm(plan, disable=not progress, desc="synth sysu", unit="img"):
        rng = R.rng_for(seed, LAYOUT, R.IMAGE, k, cam.index, i)
        h = int(round(h0 * rng.uniform(0.85, 1.2)))
        w = max(8, int(round(h * (w0 / h0) * rng.uniform(0.85, 1.15))))
        yaw = yaw_mode[cam.name] + (math.pi if rng.random() < 0.5 else 0.0) + rng.normal(0, 0.3)
        pose = sample_walking_pose(rng, yaw)
        img, kp = render_image(rng, traits[k], styles[cam.name], cam.modality, (h, w), pose,
                               sample_placement(rng, h, w, "full"))
        rel = f"{cam.name}/{pid:04d}/{i:04d}{spec.image_ext}"
        write_file(root / rel, encode_image(img, spec.image_ext))
        keypoints[rel] = kp
        counts[cam.modality] += 1
        per_split[split_of[pid]][cam.modality] += 1

    for split, rel in spec.layout["id_lists"].items():
        write_file(root / rel, ",".join(str(pid) for pid in lists[split]) + "\n")
    write_file(root / KEYPOINTS_FILE, dumps(keypoints_document(keypoints)))

    training = list(spec.layout.get("training_splits", ["train"]))
    train_sel = [per_split[s] for s in training]
    expected = {
        "identities": ids, "rgb_images": counts["rgb"], "ir_images": counts["ir"],
        "splits": {
            "+".join(training): {"identities": sum(c["ids"] for c in train_sel),
                                 "rgb_images": sum(c["rgb"] for c in train_sel),
                                 "ir_images": sum(c["ir"] for c in train_sel)},
            "test": {"identities": per_split["test"]["ids"], "rgb_images": per_split["test"]["rgb"],
                     "ir_images": per_split["test"]["ir"]},
        },
    }
    return Written(images=counts, splits=per_split, expected=expected, image_size=(h0, w0))
