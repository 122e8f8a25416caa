"""RegDB (Nguyen et al., Sensors 2017): ``Visible/<id>/*.bmp``, ``Thermal/<id>/*.bmp`` and
``idx/{split}_{modality}_{trial}.txt``.

The scanner (the per-trial index lists parsed into ``manifest.splits["trial:N"]``), the
training images of one trial, the test protocol (one trial, visible-to-thermal and
thermal-to-visible) and its metric (standard CMC), and the synthesizer hook.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from vireid.data.manifest import Manifest
from vireid.data.protocol import regdb_test_lists
from vireid.data.protocol_sets import ProtocolSets
from vireid.data.readers import DatasetReader, SynthHook
from vireid.data.readers.common import camera_images, read_idx_file
from vireid.data.scan_checks import Collector, check_count, list_dir, records_from_images
from vireid.data.spec import DatasetSpec

SETTING_NAMES = {"v2t": "Visible-to-Thermal", "t2v": "Thermal-to-Visible"}


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


def regdb_sets(manifest: Manifest, trial: int, direction: str = "v2t",
               spec: DatasetSpec | None = None) -> ProtocolSets:
    """RegDB query and gallery of one trial (each trial has its own trained model), from the
    index lists the scanner parsed into the manifest."""
    table = manifest.splits.get(f"trial:{trial}")
    if table is None:
        raise ValueError(f"the manifest has no RegDB trial {trial} (trials: "
                         f"{sorted(k for k in manifest.splits if k.startswith('trial:'))})")
    query, gallery = regdb_test_lists(table, direction, spec)
    return ProtocolSets(f"regdb/trial{trial}/{direction}", query, [gallery], [trial])

def regdb_train_paths(manifest: Manifest, trial: int) -> List[str]:
    key = f"trial:{trial}"
    table = manifest.splits.get(key)
    if table is None:
        raise ValueError(f"RegDB manifest has no {key!r} split table (has {sorted(manifest.splits)})")
    paths: List[str] = []
    for name in ("train:visible", "train:thermal"):
        if name not in table:
            raise ValueError(f"RegDB manifest's {key!r} table has no {name!r} list")
        paths.extend(str(row[0]) for row in table[name])
    return paths


class RegdbReader(DatasetReader):
    name = "regdb"
    trained_per_trial = True
    settings = ("Visible-to-Thermal", "Thermal-to-Visible")
    root_hint = "Visible/, Thermal/ and idx/ (RegDB)"
    synth = SynthHook("pipeline.synth.regdb:write_regdb", default_images_per_camera=10, stream=2)

    def scan(self, root: Path, spec: DatasetSpec, col: Collector, jobs: int, progress: bool) -> Manifest:
        return scan_regdb(root, spec, col, jobs, progress)

    def training_paths(self, manifest: Manifest, splits: Sequence[str], trial: int) -> Optional[List[str]]:
        return regdb_train_paths(manifest, trial)

    def protocol_sets(self, manifest: Manifest, options: Any, checkpoint: Mapping[str, Any]) -> Dict[str, ProtocolSets]:
        trial = options.trial or checkpoint.get("trial") or 1
        dirs = ["v2t", "t2v"] if options.direction == "both" else [options.direction]
        return {SETTING_NAMES[d]: regdb_sets(manifest, trial, d, spec=self.spec()) for d in dirs}

    def test_ids(self, manifest: Manifest, trial: Optional[int] = None) -> List[int]:
        sets = regdb_sets(manifest, int(trial or 1), "v2t", spec=self.spec())
        return sorted({s.pid for s in sets.query} | {s.pid for g in sets.galleries for s in g})

    def cmc_title(self, shot: str) -> str:
        return "RegDB CMC"


READER = RegdbReader()
