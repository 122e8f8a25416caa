"""LIP, Look Into Person (pose track): the pose estimator's training set, not a ReID benchmark.

``TrainVal_images/{train,val}_images/*.jpg`` with the pose CSVs; the scanner keeps each
image's 16 joints in its record. Registered so that ``vireid-prep manifest --dataset lip``
and ``vireid-prep synth --layout lip`` find it; vireid-train / vireid-eval do not offer it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Tuple

from vireid.data.manifest import Manifest
from vireid.data.readers import DatasetReader, SynthHook
from vireid.data.scan_checks import Collector, check_count, list_dir, records_from_images
from vireid.data.spec import DatasetSpec


def _parse_coordinate(token: str) -> float:
    token = token.strip()
    if token.lower() == "nan":
        return math.nan
    return float(token)


def read_lip_csv(path: Path, num_joints: int, col: Collector) -> Dict[str, Tuple[List[float], int]]:
    """LIP pose CSV -> ``{image name: (48 values, line)}``; NaN marks a missing joint."""
    if not path.is_file():
        col.hard("missing-file", path, "LIP annotation file not found")
        return {}
    want = 1 + 3 * num_joints
    rows: Dict[str, Tuple[List[float], int]] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        tokens = line.rstrip().split(",")
        if len(tokens) != want:
            col.hard("malformed-line", path, f"expected {want} comma-separated fields, got {len(tokens)}", lineno)
            continue
        try:
            values = [_parse_coordinate(t) for t in tokens[1:]]
        except ValueError:
            col.hard("malformed-line", path, "a joint coordinate is neither a number nor nan", lineno)
            continue
        for j in range(num_joints):
            x, y, occ = values[3 * j:3 * j + 3]
            if math.isnan(x) != math.isnan(y):
                col.hard("malformed-line", path, f"joint {j}: one coordinate is nan and the other is not", lineno)
            elif not math.isnan(occ) and occ not in (0.0, 1.0):
                col.hard("malformed-line", path, f"joint {j}: occlusion flag {occ:g} is not 0 or 1", lineno)
        name = tokens[0].strip()
        if name in rows:
            col.hard("duplicate-row", path, f"{name} already annotated on line {rows[name][1]}", lineno)
            continue
        rows[name] = (values, lineno)
    return rows


def scan_lip(root: Path, spec: DatasetSpec, col: Collector, jobs: int, progress: bool) -> Manifest:
    from vireid.data.manifest import keypoints_to_json
    from vireid.pose.joints import NUM_JOINTS

    found: List[Tuple[str, dict]] = []
    counts: Dict[str, int] = {}
    pid = 0
    for split, paths in spec.layout["splits"].items():
        img_dir = root / paths["images"]
        csv_path = root / paths["annotations"]
        rows = read_lip_csv(csv_path, NUM_JOINTS, col)
        if not img_dir.is_dir():
            col.hard("missing-folder", img_dir, "LIP image folder not found")
            continue
        present = {p.name for p in list_dir(img_dir) if p.is_file()}
        for name, (values, lineno) in rows.items():
            if name not in present:
                col.soft("missing-image", csv_path, f"{name} is annotated but not in {paths['images']}", lineno)
                continue
            found.append((f"{paths['images']}/{name}",
                          dict(pid=pid, camera="", camid=0, modality="rgb", split=split,
                               keypoints=keypoints_to_json(values))))
            pid += 1
        unannotated = sorted(present - set(rows))
        if unannotated:
            col.note("unannotated-image", img_dir, f"{len(unannotated)} image(s) without pose annotation are "
                                                   f"not used, e.g. {unannotated[0]}")
        counts[split] = sum(1 for rel, f in found if f["split"] == split)
    records = records_from_images(root, found, col, jobs, progress)
    for split, want in (spec.expected.get("images") or {}).items():
        check_count(col, root, f"{split} images", counts.get(split, 0), want)
    col.raise_if_fatal(root)
    return Manifest(dataset=spec.name, root=str(root), records=records, splits={},
                    spec_hash=spec.content_hash, partial=col.allow_partial, warnings=col.warnings,
                    skipped=col.skipped)

class LipReader(DatasetReader):
    name = "lip"
    reid = False
    root_hint = "TrainVal_images/ and TrainVal_pose_annotations/ (LIP)"
    synth = SynthHook("pipeline.synth.lip:write_lip", default_images_per_camera=5, stream=3, infrared=False)

    def scan(self, root: Path, spec: DatasetSpec, col: Collector, jobs: int, progress: bool) -> Manifest:
        return scan_lip(root, spec, col, jobs, progress)


READER = LipReader()
