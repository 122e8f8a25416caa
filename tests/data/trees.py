"""Tiny dataset trees in the real SYSU-MM01, RegDB and LIP layouts, for scanner tests.

Independent of the synthetic renderer (pipeline.synth) on purpose: these trees are
minimal and hand-checkable, each image a small solid-colour JPEG/BMP.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np

from vireid.data.spec import DatasetSpec, load_spec


def _image(path: Path, value: int, size: Tuple[int, int] = (16, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((size[0], size[1], 3), value % 256, np.uint8)
    ok, buf = cv2.imencode(path.suffix, img)
    assert ok
    path.write_bytes(buf.tobytes())


SYSU_SPLITS = {"train": [1, 2, 4], "val": [5], "test": [7, 8]}


def make_sysu(root: Path, per_cam: int = 2) -> DatasetSpec:
    """Ids 1,2,4 train, 5 val, 7,8 test; every id in cam1, cam3, cam4, cam6; id 2 also in cam2/cam5.
    Returns the spec with ``expected`` sizes of this tree."""
    spec = load_spec("sysu")
    cams: Dict[int, List[str]] = {pid: ["cam1", "cam3", "cam4", "cam6"] for ids in SYSU_SPLITS.values() for pid in ids}
    cams[2] += ["cam2", "cam5"]
    n = 0
    for pid, cs in cams.items():
        for cam in cs:
            for k in range(1, per_cam + 1):
                _image(root / cam / f"{pid:04d}" / f"{k:04d}.jpg", n)
                n += 1
    (root / "exp").mkdir(parents=True)
    for split, ids in SYSU_SPLITS.items():
        (root / "exp" / f"{split}_id.txt").write_text(",".join(str(i) for i in ids) + "\n")
    rgb = lambda ids: sum(per_cam * sum(spec.camera(c).modality == "rgb" for c in cams[i]) for i in ids)
    ir = lambda ids: sum(per_cam * sum(spec.camera(c).modality == "ir" for c in cams[i]) for i in ids)
    trainval = SYSU_SPLITS["train"] + SYSU_SPLITS["val"]
    everyone = list(cams)
    expected = {
        "identities": len(everyone), "rgb_images": rgb(everyone), "ir_images": ir(everyone),
        "splits": {"train+val": {"identities": len(trainval), "rgb_images": rgb(trainval), "ir_images": ir(trainval)},
                   "test": {"identities": 2, "ir_images": ir(SYSU_SPLITS["test"])}},
    }
    return dataclasses.replace(spec, expected=expected)


def make_regdb(root: Path, ids: int = 4, per_id: int = 2, trials: int = 2) -> DatasetSpec:
    spec = load_spec("regdb")
    for pid in range(1, ids + 1):
        for k in range(per_id):
            _image(root / "Visible" / str(pid) / f"male_front_v_{pid:03d}{k:02d}_{pid}.bmp", pid * 10 + k)
            _image(root / "Thermal" / str(pid) / f"male_front_t_{pid:03d}{k:02d}_{pid}.bmp", pid * 10 + k + 5)
    (root / "idx").mkdir()
    rng = np.random.default_rng(0)
    for trial in range(1, trials + 1):
        perm = rng.permutation(np.arange(1, ids + 1))
        parts = {"train": sorted(perm[: ids // 2]), "test": sorted(perm[ids // 2:])}
        for split, pids in parts.items():
            for folder, word, letter in (("Visible", "visible", "v"), ("Thermal", "thermal", "t")):
                lines = [f"{folder}/{pid}/male_front_{letter}_{pid:03d}{k:02d}_{pid}.bmp {label}"
                         for label, pid in enumerate(pids) for k in range(per_id)]
                (root / "idx" / f"{split}_{word}_{trial}.txt").write_text("\n".join(lines) + "\n")
    evaluation = dataclasses.replace(spec.evaluation, trials=tuple(range(1, trials + 1)))
    expected = {"identities": ids, "images_per_identity": {"rgb": per_id, "ir": per_id},
                "ids_per_split": {"train": ids // 2, "test": ids - ids // 2}}
    return dataclasses.replace(spec, expected=expected, evaluation=evaluation)


def make_lip(root: Path, n_train: int = 3, n_val: int = 2) -> DatasetSpec:
    spec = load_spec("lip")
    for split, n in (("train", n_train), ("val", n_val)):
        paths = spec.layout["splits"][split]
        rows = []
        for i in range(n):
            name = f"{100000 + i:06d}_{200000 + i:06d}.jpg"
            _image(root / paths["images"] / name, i * 7, size=(32, 20))
            values = []
            for j in range(16):
                if j == 9 and i == 0:
                    values += ["nan", "nan", "nan"]      # a missing head
                else:
                    values += [str(j % 20), str(2 * j % 32), str(j % 2)]
            rows.append(",".join([name] + values))
        csv = root / paths["annotations"]
        csv.parent.mkdir(parents=True, exist_ok=True)
        csv.write_text("\n".join(rows) + "\n")
    return dataclasses.replace(spec, expected={"images": {"train": n_train, "val": n_val}})
