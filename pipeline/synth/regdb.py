"""Synthetic RegDB: ``Visible/<id>/*.bmp``, ``Thermal/<id>/*.bmp``, ``idx/{split}_{modality}_{trial}.txt``.

Folder names, modality words and the idx file pattern come from
``data_manifests/regdb.yaml``. As in the real set, the visible and thermal images of
one identity are simultaneous pairs (same pose, the two cameras slightly offset), file
names read ``<male|female>_<front|back>_<v|t>_<5-digit frame>_<id>.bmp``, and each
trial splits the identities at random into disjoint halves; an idx line is
``Visible/7/male_front_v_00012_7.bmp 3``, the label being the index of the id among
that file's sorted ids.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

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
from vireid.data.spec import DatasetSpec, load_spec

LAYOUT = "regdb"
DEFAULT_IMAGES_PER_CAMERA = 10
DEFAULT_SIZE = (128, 64)


def trial_split(seed: int, trial: int, ids: List[int]) -> Dict[str, List[int]]:
    """A random half/half train/test split of ``ids`` for one trial."""
    perm = R.rng_for(seed, LAYOUT, R.TRIAL, trial).permutation(len(ids))
    half = len(ids) // 2
    return {"train": sorted(ids[i] for i in perm[:half]), "test": sorted(ids[i] for i in perm[half:])}


def write_regdb(root: Path, ids: int, seed: int, images_per_camera: Optional[int] = None,
                image_size: Optional[Tuple[int, int]] = None, progress: bool = False,
                spec: Optional[DatasetSpec] = None, ir_levels: str = "dye") -> Written:
    """Write a synthetic RegDB tree under ``root``."""
    spec = spec or load_spec(LAYOUT)
    if ids < 2 or ids % 2:
        raise ValueError(f"RegDB splits identities into equal train/test halves: --ids must be even and >= 2, "
                         f"got {ids}")
    per_cam = images_per_camera or DEFAULT_IMAGES_PER_CAMERA
    h, w = image_size or DEFAULT_SIZE
    pids = list(range(1, ids + 1))
    cams = list(spec.cameras)
    styles = {c.name: sample_scene_style(R.rng_for(seed, LAYOUT, R.SCENE, c.index), indoor=False) for c in cams}
    traits = [sample_traits(R.rng_for(seed, LAYOUT, R.TRAITS, k), ir_levels) for k in range(ids)]

    files: Dict[str, Dict[int, List[str]]] = {c.name: {} for c in cams}
    keypoints: Dict[str, np.ndarray] = {}
    counts = {"rgb": 0, "ir": 0}
    frame = 0
    plan = [(k, pid, i) for k, pid in enumerate(pids) for i in range(per_cam)]
    for k, pid, i in tqdm(plan, disable=not progress, desc="synth regdb", unit="pair"):
        shared = R.rng_for(seed, LAYOUT, R.IMAGE, k, i, 0)
        yaw = (0.0 if shared.random() < 0.5 else math.pi) + shared.normal(0, 0.25)
        pose = sample_walking_pose(shared, yaw)
        gender = "female" if traits[k].female else "male"
        view = "front" if math.cos(yaw) >= 0 else "back"
        for cam in cams:
            rng = R.rng_for(seed, LAYOUT, R.IMAGE, k, i, cam.index)
            img, kp = render_image(rng, traits[k], styles[cam.name], cam.modality, (h, w), pose,
                                   sample_placement(rng, h, w, "full"))
            letter = cam.modality == "rgb" and "v" or "t"
            name = f"{gender}_{view}_{letter}_{frame:05d}_{pid}{spec.image_ext}"
            rel = f"{cam.name}/{pid}/{name}"
            write_file(root / rel, encode_image(img, spec.image_ext))
            keypoints[rel] = kp
            files[cam.name].setdefault(pid, []).append(rel)
            counts[cam.modality] += 1
        frame += 1

    for trial in spec.evaluation.trials:
        split = trial_split(seed, trial, pids)
        for split_name in spec.layout["idx_splits"]:
            members = split[split_name]
            for cam in cams:
                lines = [f"{rel} {label}" for label, pid in enumerate(members) for rel in sorted(files[cam.name][pid])]
                rel_idx = spec.layout["idx_file"].format(split=split_name, modality=cam.idx_name, trial=trial)
                write_file(root / rel_idx, "\n".join(lines) + "\n")
    write_file(root / KEYPOINTS_FILE, dumps(keypoints_document(keypoints)))

    half = ids // 2
    expected = {"identities": ids, "images_per_identity": {"rgb": per_cam, "ir": per_cam},
                "ids_per_split": {s: half for s in spec.layout["idx_splits"]}}
    splits = {s: {"ids": half, "rgb": half * per_cam, "ir": half * per_cam} for s in spec.layout["idx_splits"]}
    return Written(images=counts, splits=splits, expected=expected, image_size=(h, w))
