"""Scanners: a dataset root on disk -> a :class:`~vireid.data.manifest.Manifest`.

One scanner per dataset (SYSU-MM01, RegDB, LIP), each the one parser of its list
formats; what they check with (the problem report, image inspection, expected sizes)
is :mod:`vireid.data.scan_checks`.

Each scanner checks the root against the dataset's declared layout and sizes
(``data_manifests/<name>.yaml``) and collects *every* problem before failing, each
with the path (and line) at fault: missing or extra folders, unreadable or zero-byte
images, ids listed without images, malformed list lines, counts that differ from the
declared ones. With ``allow_partial=True`` a partial or custom copy is accepted: count
and coverage problems become warnings recorded in the manifest (never silently);
corrupt images and malformed lists stay errors, unless ``skip_unreadable=True``
(``vireid-prep heatmaps --on-error skip``): an unreadable or zero-byte image is then left
out and listed with its reason in ``manifest.skipped`` (and so in the cache's
``skipped.json``).
"""
from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from vireid.data.manifest import Manifest
from vireid.data.scan_checks import (Collector, Problem, ScanError, check_count, expected_sizes, list_dir,
                                     records_from_images)
from vireid.data.spec import DatasetSpec, load_spec

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- SYSU-MM01
def read_id_list(path: Path, col: Collector) -> List[int]:
    """SYSU ``exp/*_id.txt``: integers, comma-separated, on one line."""
    if not path.is_file():
        col.hard("missing-file", path, "id list not found")
        return []
    ids: List[int] = []
    lines = [ln for ln in path.read_text().splitlines()]
    content = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip()]
    if len(content) > 1:
        col.hard("malformed-list", path, f"expected ids on one line, found {len(content)} non-empty lines",
                 content[1][0])
    for lineno, line in content[:1]:
        for token in line.split(","):
            token = token.strip()
            if not token:
                continue
            if not token.isdigit():
                col.hard("malformed-list", path, f"{token!r} is not an integer id", lineno)
                continue
            ids.append(int(token))
    if len(set(ids)) != len(ids):
        col.hard("malformed-list", path, "an id is listed twice")
    return ids


def camera_images(root: Path, spec: DatasetSpec, col: Collector, missing_camera: Callable[..., None],
                  missing_camera_msg: str, id_dir_msg: str, file_msg: str,
                  report_empty: bool = False) -> Iterator[Tuple[Any, Path, Path]]:
    """``(camera, identity folder, image file)`` of every image under ``root/<camera>/<id>/``
    (SYSU-MM01 and RegDB share this layout), in sorted order. A missing camera folder is
    reported with ``missing_camera`` (``col.soft`` or ``col.hard``; ``{camera}`` in the message is
    its name), entries that do not match the layout's ``id_dir_pattern`` / ``file_pattern`` as
    extra entries, and with ``report_empty`` an identity folder without files."""
    id_re = re.compile(spec.layout["id_dir_pattern"])
    file_re = re.compile(spec.layout["file_pattern"])
    for cam in spec.cameras:
        cam_dir = root / cam.name
        if not cam_dir.is_dir():
            missing_camera("missing-folder", cam_dir, missing_camera_msg.format(camera=cam.name))
            continue
        for id_dir in list_dir(cam_dir):
            if not id_dir.is_dir() or not id_re.match(id_dir.name):
                col.soft("extra-entry", id_dir, id_dir_msg)
                continue
            files = list_dir(id_dir)
            if report_empty and not files:
                col.soft("empty-folder", id_dir, "identity folder without images")
            for f in files:
                if not f.is_file() or not file_re.match(f.name):
                    col.soft("extra-entry", f, file_msg)
                    continue
                yield cam, id_dir, f


def scan_sysu(root: Path, spec: DatasetSpec, col: Collector, jobs: int, progress: bool) -> Manifest:
    layout = spec.layout
    cam_names = {c.name for c in spec.cameras}

    for entry in list_dir(root):
        if entry.is_dir() and entry.name not in cam_names and entry.name != "exp":
            col.note("extra-folder", entry, "not part of SYSU-MM01; ignored")

    # id lists
    split_of: Dict[int, str] = {}
    lists: Dict[str, List[int]] = {}
    for split, rel in layout["id_lists"].items():
        ids = read_id_list(root / rel, col)
        lists[split] = ids
        for pid in ids:
            if pid in split_of:
                col.hard("malformed-list", root / rel, f"id {pid} is also in the {split_of[pid]} list")
            split_of[pid] = split

    # images
    found: List[Tuple[str, dict]] = []
    walk = camera_images(root, spec, col, col.soft, f"camera folder of {spec.full_name} not found",
                         "expected only 4-digit identity folders here",
                         f"expected only images named like 0001{spec.image_ext}", report_empty=True)
    for cam, id_dir, f in walk:
        pid = int(id_dir.name)
        if pid not in split_of:
            col.soft("unlisted-id", f, f"id {pid} is in none of the exp/*_id.txt lists")
        found.append((f"{cam.name}/{id_dir.name}/{f.name}",
                      dict(pid=pid, camera=cam.name, camid=cam.index, modality=cam.modality,
                           split=split_of.get(pid, "none"))))
    records = records_from_images(root, found, col, jobs, progress)

    # coverage and counts
    have = {r.pid for r in records}
    for split, ids in lists.items():
        missing = [pid for pid in ids if pid not in have]
        if missing:
            col.soft("id-without-images", root / layout["id_lists"][split],
                     f"{len(missing)} listed id(s) have no image: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    query_cams = set(spec.evaluation.query_cameras if spec.evaluation is not None else ())
    test_ids = set(lists.get("test", []))
    queried = {r.pid for r in records if r.camera in query_cams and r.pid in test_ids}
    if test_ids and not queried:
        col.soft("no-queries", root, f"no test id has an image in the query cameras {sorted(query_cams)}")
    exp = spec.expected
    check_count(col, root, "identities", len(have), exp.get("identities"))
    check_count(col, root, "RGB images", sum(r.modality == "rgb" for r in records), exp.get("rgb_images"))
    check_count(col, root, "IR images", sum(r.modality == "ir" for r in records), exp.get("ir_images"))
    train_splits = set(layout.get("training_splits", ["train"]))
    for name, want in (exp.get("splits") or {}).items():
        splits = set(name.split("+"))
        sel = [r for r in records if r.split in splits]
        check_count(col, root, f"{name} identities", len({r.pid for r in sel}), want.get("identities"))
        if "rgb_images" in want:
            check_count(col, root, f"{name} RGB images", sum(r.modality == "rgb" for r in sel), want["rgb_images"])
        if "ir_images" in want:
            check_count(col, root, f"{name} IR images", sum(r.modality == "ir" for r in sel), want["ir_images"])
    col.raise_if_fatal(root)
    return Manifest(dataset=spec.name, root=str(root), records=records,
                    splits={"id_lists": {k: sorted(v) for k, v in lists.items()},
                            "training_splits": sorted(train_splits)},
                    spec_hash=spec.content_hash, partial=col.allow_partial, warnings=col.warnings,
                    skipped=col.skipped)


# --------------------------------------------------------------------------- RegDB
def read_idx_file(path: Path, col: Collector) -> List[Tuple[str, int, int]]:
    """RegDB ``idx/*.txt``: lines ``relative/path label`` -> ``(path, label, line number)``.

    The one parser of the format: the manifest keeps its records (``splits["trial:N"]``),
    and the test protocol (:func:`vireid.data.protocol.regdb_test_lists`) reads them there."""
    if not path.is_file():
        col.hard("missing-file", path, "RegDB index file not found")
        return []
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            col.hard("malformed-line", path, f"expected '<relative/path> <label>', got {line.strip()!r}", lineno)
            continue
        out.append((parts[0].replace("\\", "/"), int(parts[1]), lineno))
    if not out:
        col.hard("malformed-list", path, "index file is empty")
    return out


def scan_regdb(root: Path, spec: DatasetSpec, col: Collector, jobs: int, progress: bool) -> Manifest:
    layout = spec.layout
    known = {c.name for c in spec.cameras} | {Path(layout["idx_file"]).parts[0]}
    for entry in list_dir(root):
        if entry.is_dir() and entry.name not in known:
            col.note("extra-folder", entry, "not part of RegDB; ignored")

    found: List[Tuple[str, dict]] = []
    walk = camera_images(root, spec, col, col.hard, "{camera} image folder of RegDB not found",
                         "expected only numeric identity folders here", f"expected only {spec.image_ext} images")
    for cam, id_dir, f in walk:
        found.append((f"{cam.name}/{id_dir.name}/{f.name}",
                      dict(pid=int(id_dir.name), camera=cam.name, camid=cam.index, modality=cam.modality, split="")))
    records = records_from_images(root, found, col, jobs, progress)
    by_path = {r.path: r for r in records}

    exp = spec.expected
    check_count(col, root, "identities", len({r.pid for r in records}), exp.get("identities"))
    per_id = exp.get("images_per_identity") or {}
    for cam in spec.cameras:
        want = per_id.get(cam.modality)
        if want is None:
            continue
        counts: Dict[int, int] = {}
        for r in records:
            if r.camera == cam.name:
                counts[r.pid] = counts.get(r.pid, 0) + 1
        for pid in sorted(pid for pid, n in counts.items() if n != want):
            col.soft("count-mismatch", root / cam.name / str(pid), f"{counts[pid]} images, RegDB has {want}")

    # per-trial index files
    splits: Dict[str, Dict[str, List[List[object]]]] = {}
    for trial in spec.evaluation.trials if spec.evaluation is not None else ():
        table: Dict[str, List[List[object]]] = {}
        ids_of: Dict[str, Dict[str, set]] = {}
        for split in layout["idx_splits"]:
            for cam in spec.cameras:
                rel = layout["idx_file"].format(split=split, modality=cam.idx_name, trial=trial)
                path = root / rel
                entries = read_idx_file(path, col)
                label_of: Dict[int, int] = {}
                pid_of: Dict[int, int] = {}
                rows = []
                for img, label, lineno in entries:
                    rec = by_path.get(img)
                    if rec is None and any(d["path"] == img for d in col.skipped):
                        continue                      # unreadable, left out: listed in manifest.skipped
                    if rec is None:
                        col.hard("unknown-image", path, f"{img} is not an image of the dataset", lineno)
                        continue
                    if rec.camera != cam.name:
                        col.hard("wrong-modality", path, f"{img} is not a {cam.name} image", lineno)
                        continue
                    if label_of.setdefault(rec.pid, label) != label or pid_of.setdefault(label, rec.pid) != rec.pid:
                        col.hard("inconsistent-label", path,
                                 f"label {label} for id {rec.pid} conflicts with an earlier line", lineno)
                    rows.append([img, label])
                table[f"{split}:{cam.idx_name}"] = rows
                ids_of.setdefault(split, {})[cam.name] = set(label_of)
        # the two modalities of a split share their ids; train and test are disjoint
        for split, per_cam in ids_of.items():
            sets = list(per_cam.values())
            if len(sets) == 2 and sets[0] != sets[1]:
                col.hard("split-mismatch", root / "idx", f"trial {trial} {split}: visible and thermal ids differ")
            if sets:
                check_count(col, root / "idx", f"trial {trial} {split} identities", len(sets[0]),
                             (exp.get("ids_per_split") or {}).get(split))
        if len(ids_of) == 2:
            a, b = (set().union(*v.values()) for v in ids_of.values())
            if a & b:
                col.hard("split-overlap", root / "idx", f"trial {trial}: {len(a & b)} id(s) in both train and test")
        splits[f"trial:{trial}"] = table
    col.raise_if_fatal(root)
    return Manifest(dataset=spec.name, root=str(root), records=records, splits=splits,
                    spec_hash=spec.content_hash, partial=col.allow_partial, warnings=col.warnings,
                    skipped=col.skipped)


# --------------------------------------------------------------------------- LIP
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


# --------------------------------------------------------------------------- entry point
_SCANNERS: Mapping[str, Callable[..., Manifest]] = {"sysu": scan_sysu, "regdb": scan_regdb, "lip": scan_lip}


def scan(dataset: str, root: "str | Path", *, allow_partial: bool = False, jobs: int = 1,
         progress: bool = False, spec: Optional[DatasetSpec] = None, skip_unreadable: bool = False) -> Manifest:
    """Scan ``root`` as ``dataset`` (sysu|regdb|lip) into a manifest.

    Raises :class:`ScanError` listing every problem; with ``allow_partial`` count and
    coverage problems are kept as ``manifest.warnings`` instead. ``spec`` overrides the
    declared specification (tests; custom copies). ``skip_unreadable`` leaves unreadable
    images out and lists them in ``manifest.skipped`` instead of failing.
    """
    if dataset not in _SCANNERS:
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(_SCANNERS)}")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ScanError(root, [Problem("missing-root", str(root), "dataset root is not a directory")])
    spec = expected_sizes(root, spec or load_spec(dataset))
    col = Collector(allow_partial, skip_unreadable)
    manifest = _SCANNERS[dataset](root, spec, col, jobs, progress)
    for w in manifest.warnings:
        log.warning("%s", w)
    return manifest
