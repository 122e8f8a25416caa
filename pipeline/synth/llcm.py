"""Synthetic LLCM: ``idx/train_{vis,nir}.txt``, ``idx/test_id.txt``, ``test_{vis,nir}/camN/IIII/*.jpg``.

List and folder names, cameras (nine, each visible and near-infrared; no NIR camera 3)
and the modality words come from ``vireid/data/manifests/llcm.yaml``. About a third of the
identities are test identities (LLCM: 351 of 1,064); the training images lie under
``vis/camN/IIII/`` and ``nir/camN/IIII/`` and are listed with their labels (the index of
the identity among the sorted training ids) in ``idx/train_vis.txt`` / ``train_nir.txt``.
Each identity passes 2 or 3 cameras and is recorded in both modalities by each (by the
visible one only at camera 3), so every identity has images of another camera to match in
the other modality. File names read ``IIII_cNN_sFFFFF_<vis|nir>.jpg``.
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

LAYOUT = "llcm"
DEFAULT_IMAGES_PER_CAMERA = 2
DEFAULT_SIZE = (128, 64)
MIN_IDS = 4
TEST_FRACTION = 0.33
_MOD_CODE = {"rgb": 0, "ir": 1}


def id_numbers(seed: int, n: int) -> List[int]:
    """``n`` sorted, distinct, non-contiguous 4-digit id numbers."""
    rng = R.rng_for(seed, LAYOUT, R.SPLIT, 0)
    pool = n + max(2, n // 4)
    if pool > 9999:
        raise ValueError(f"LLCM ids are 4-digit folder names: {n} identities is too many")
    return sorted(int(v) + 1 for v in rng.choice(pool, size=n, replace=False))


def split_ids(seed: int, ids: Sequence[int]) -> Dict[str, List[int]]:
    """``train`` / ``test`` ids: about a third test, at least 2 of each."""
    n = len(ids)
    n_test = max(2, round(TEST_FRACTION * n))
    if n - n_test < 2:
        raise ValueError(f"LLCM needs at least {MIN_IDS} identities (2 train, 2 test), got {n}")
    perm = R.rng_for(seed, LAYOUT, R.SPLIT, 1).permutation(n)
    return {"train": sorted(ids[i] for i in perm[n_test:]), "test": sorted(ids[i] for i in perm[:n_test])}


def cameras_of_identity(rng: np.random.Generator, numbers: Sequence[int]) -> List[int]:
    """2 or 3 distinct camera numbers (so each identity is seen by two cameras at least)."""
    k = 2 if rng.random() < 0.6 else 3
    return sorted(int(v) for v in rng.choice(np.array(numbers), size=k, replace=False))


def write_llcm(root: Path, ids: int, seed: int, images_per_camera: Optional[int] = None,
               image_size: Optional[Tuple[int, int]] = None, progress: bool = False,
               spec: Optional[DatasetSpec] = None, ir_levels: str = "dye") -> Written:
    """Write a synthetic LLCM tree under ``root``."""
    spec = spec or load_spec(LAYOUT)
    per_cam = images_per_camera or DEFAULT_IMAGES_PER_CAMERA
    h0, w0 = image_size or DEFAULT_SIZE
    if ids < MIN_IDS:
        raise ValueError(f"LLCM needs at least {MIN_IDS} identities (2 train, 2 test), got {ids}")
    layout = spec.layout
    words: Dict[str, str] = dict(spec.raw["modalities"])
    numbers = id_numbers(seed, ids)
    lists = split_ids(seed, numbers)
    split_of = {pid: s for s, members in lists.items() for pid in members}
    label_of = {pid: k for k, pid in enumerate(lists["train"])}
    cams: Dict[Tuple[str, int], Camera] = {(c.modality, c.index): c for c in spec.cameras}
    cam_numbers = sorted({c.index for c in spec.cameras})

    styles, yaw_mode = {}, {}
    for cam in spec.cameras:
        rng = R.rng_for(seed, LAYOUT, R.SCENE, _MOD_CODE[cam.modality], cam.index)
        styles[cam.name] = sample_scene_style(rng, indoor=cam.index % 2 == 0)
        yaw_mode[cam.name] = float(rng.choice([0.0, math.pi / 2, -math.pi / 2, 0.6, -0.6]))
    plan = []
    for k, pid in enumerate(numbers):
        for n in cameras_of_identity(R.rng_for(seed, LAYOUT, R.COVERAGE, k), cam_numbers):
            for modality in ("rgb", "ir"):
                if (modality, n) in cams:
                    plan.extend((k, pid, cams[(modality, n)], i) for i in range(1, per_cam + 1))
    traits = [sample_traits(R.rng_for(seed, LAYOUT, R.TRAITS, k), ir_levels) for k in range(ids)]

    keypoints: Dict[str, np.ndarray] = {}
    counts = {"rgb": 0, "ir": 0}
    per_split = {s: {"ids": len(m), "rgb": 0, "ir": 0} for s, m in lists.items()}
    train_lines: Dict[str, List[str]] = {"rgb": [], "ir": []}
    for frame, (k, pid, cam, i) in enumerate(tqdm(plan, disable=not progress, desc="synth llcm", unit="img")):
        rng = R.rng_for(seed, LAYOUT, R.IMAGE, k, _MOD_CODE[cam.modality], cam.index, i)
        h = int(round(h0 * rng.uniform(0.85, 1.2)))
        w = max(8, int(round(h * (w0 / h0) * rng.uniform(0.85, 1.15))))
        yaw = yaw_mode[cam.name] + (math.pi if rng.random() < 0.5 else 0.0) + rng.normal(0, 0.3)
        pose = sample_walking_pose(rng, yaw)
        img, kp = render_image(rng, traits[k], styles[cam.name], cam.modality, (h, w), pose,
                               sample_placement(rng, h, w, "full"))
        word = words[cam.modality]
        name = f"{pid:04d}_c{cam.index:02d}_s{frame:05d}_{word}{spec.image_ext}"
        split = split_of[pid]
        top = word if split == "train" else layout["test_folders"][cam.modality]
        rel = f"{top}/cam{cam.index}/{pid:04d}/{name}"
        write_file(root / rel, encode_image(img, spec.image_ext))
        keypoints[rel] = kp
        counts[cam.modality] += 1
        per_split[split][cam.modality] += 1
        if split == "train":
            train_lines[cam.modality].append(f"{rel} {label_of[pid]}")

    for cam in spec.cameras:                    # every camera folder exists, as in the real set
        (root / layout["test_folders"][cam.modality] / f"cam{cam.index}").mkdir(parents=True, exist_ok=True)
    for modality, rel_list in layout["train_lists"].items():
        write_file(root / rel_list, "\n".join(sorted(train_lines[modality])) + "\n")
    write_file(root / layout["test_id_list"], ",".join(str(pid) for pid in lists["test"]) + "\n")
    write_file(root / KEYPOINTS_FILE, dumps(keypoints_document(keypoints)))

    expected = {
        "identities": ids, "rgb_images": counts["rgb"], "ir_images": counts["ir"],
        "splits": {s: {"identities": c["ids"], "rgb_images": c["rgb"], "ir_images": c["ir"]}
                   for s, c in per_split.items()},
    }
    return Written(images=counts, splits=per_split, expected=expected, image_size=(h0, w0))
