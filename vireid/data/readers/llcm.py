"""LLCM (Zhang & Wang, CVPR 2023): the low-light cross-modality benchmark, as distributed.

* ``idx/train_vis.txt``, ``idx/train_nir.txt``: lines ``relative/path label``, the
  training images;
* ``test_vis/camN/IIII/*.jpg`` (cam1..cam9), ``test_nir/camN/IIII/*.jpg`` (no cam3): the
  test images of the identities in ``idx/test_id.txt`` (one comma-separated line).

Folder and list names, cameras and expected sizes come from ``llcm.yaml``. The scanner
gathers every problem with its file (and line): a missing list, a list line naming an
absent image, an identity folder not in ``test_id.txt``, a label that contradicts an
earlier line. Records: training images ``split='train'``, test images ``split='test'``;
``camera`` is ``<vis|nir>_camN``, ``camid`` N (shared by the two modalities).

The test protocol is the LLCM one of the evaluation code that introduced the benchmark
(``shared/golden/README.md``): :func:`vireid.data.protocol.llcm_query` /
:func:`~vireid.data.protocol.llcm_gallery` and :func:`vireid.evaluation.llcm_metrics`
(from the ``llcm`` branch), both directions, mean over 10 seeded gallery trials.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from vireid.data.manifest import Manifest
from vireid.data.protocol import Sample
from vireid.data.protocol_sets import ProtocolSets
from vireid.data.readers import DatasetReader, SynthHook
from vireid.data.readers.common import read_id_list, read_idx_file
from vireid.data.scan_checks import Collector, check_count, list_dir, records_from_images
from vireid.data.spec import DatasetSpec

#: vireid-eval --direction -> setting; v2t: visible queries, t2v: infrared queries
SETTING_NAMES = {"t2v": "IR-to-VIS", "v2t": "VIS-to-IR"}

_CAM_DIR = re.compile(r"^cam(\d+)$")
_CAM_IN_NAME = re.compile(r"_c(\d+)_")
_ID_IN_NAME = re.compile(r"^(\d{4})_")


def camera_folder(camera_name: str) -> str:
    """``vis_cam3`` -> ``cam3``."""
    return camera_name.split("_", 1)[1]


def _camera_number(rel: str) -> Optional[int]:
    parts = rel.split("/")
    for part in reversed(parts[:-1]):
        m = _CAM_DIR.match(part)
        if m:
            return int(m.group(1))
    m = _CAM_IN_NAME.search(parts[-1])
    return int(m.group(1)) if m else None


def _identity(rel: str, label: int, id_re: "re.Pattern[str]") -> int:
    parts = rel.split("/")
    for part in reversed(parts[:-1]):
        if id_re.match(part):
            return int(part)
    m = _ID_IN_NAME.match(parts[-1])
    return int(m.group(1)) if m else label


def scan_llcm(root: Path, spec: DatasetSpec, col: Collector, jobs: int, progress: bool) -> Manifest:
    layout = spec.layout
    words: Mapping[str, str] = spec.raw.get("modalities") or {}
    id_re = re.compile(layout["id_dir_pattern"])
    file_re = re.compile(layout["file_pattern"])
    by_name = {c.name: c for c in spec.cameras}

    id_list = root / layout["test_id_list"]
    test_ids = read_id_list(id_list, col)
    test_set = set(test_ids)

    found: List[Tuple[str, dict]] = []
    listed: Dict[str, Tuple[Path, int]] = {}
    train_roots = set()
    for modality, rel_list in layout["train_lists"].items():
        list_path = root / rel_list
        label_of: Dict[int, int] = {}
        pid_of: Dict[int, int] = {}
        for img, label, lineno in read_idx_file(list_path, col, "LLCM training list"):
            train_roots.add(img.split("/", 1)[0])
            if img in listed:
                where, line = listed[img]
                col.hard("duplicate-line", list_path, f"{img} is already listed ({where.name} line {line})", lineno)
                continue
            listed[img] = (list_path, lineno)
            if not (root / img).is_file():
                col.hard("missing-image", list_path, f"{img} is listed but not found under the root", lineno)
                continue
            number = _camera_number(img)
            cam = by_name.get(f"{words.get(modality, modality)}_cam{number}") if number is not None else None
            if cam is None or cam.modality != modality:
                col.hard("unknown-camera", list_path,
                         f"{img}: no {words.get(modality, modality)} camera of LLCM in the path "
                         f"(a camN folder or _cNN_ in the name)", lineno)
                continue
            pid = _identity(img, label, id_re)
            if pid in test_set:
                col.hard("split-overlap", list_path, f"{img}: identity {pid} is a test identity ({id_list.name})",
                         lineno)
                continue
            if label_of.setdefault(pid, label) != label or pid_of.setdefault(label, pid) != pid:
                col.hard("inconsistent-label", list_path,
                         f"label {label} for identity {pid} conflicts with an earlier line", lineno)
            found.append((img, dict(pid=pid, camera=cam.name, camid=cam.index, modality=modality, split="train")))

    test_folders: Mapping[str, str] = layout["test_folders"]
    known = {Path(layout["test_id_list"]).parts[0], *test_folders.values(), *train_roots}
    for entry in list_dir(root):
        if entry.is_dir() and entry.name not in known:
            col.note("extra-folder", entry, "not part of LLCM; ignored")
    for modality, folder in test_folders.items():
        mod_dir = root / folder
        if not mod_dir.is_dir():
            col.hard("missing-folder", mod_dir, f"LLCM test folder ({modality}) not found")
            continue
        cams = {camera_folder(c.name): c for c in spec.cameras_of(modality)}
        for entry in list_dir(mod_dir):
            if entry.name not in cams:
                col.soft("extra-entry", entry, f"not a camera folder of {folder} ({', '.join(cams)})")
        for cam_folder, cam in cams.items():
            cam_dir = mod_dir / cam_folder
            if not cam_dir.is_dir():
                col.soft("missing-folder", cam_dir, "camera folder not found")
                continue
            for id_dir in list_dir(cam_dir):
                if not id_dir.is_dir() or not id_re.match(id_dir.name):
                    col.soft("extra-entry", id_dir, "expected only 4-digit identity folders here")
                    continue
                pid = int(id_dir.name)
                if pid not in test_set:
                    col.hard("unlisted-id", id_dir, f"identity {id_dir.name} is not in {layout['test_id_list']}")
                    continue
                for f in list_dir(id_dir):
                    if not f.is_file() or not file_re.match(f.name):
                        col.soft("extra-entry", f, f"expected only {spec.image_ext} images")
                        continue
                    found.append((f"{folder}/{cam_folder}/{id_dir.name}/{f.name}",
                                  dict(pid=pid, camera=cam.name, camid=cam.index, modality=modality, split="test")))
    records = records_from_images(root, found, col, jobs, progress)

    test_records = [r for r in records if r.split == "test"]
    missing = sorted(test_set - {r.pid for r in test_records})
    if missing:
        col.soft("id-without-images", id_list, f"{len(missing)} listed id(s) have no test image: "
                                               f"{missing[:10]}{' ...' if len(missing) > 10 else ''}")
    for modality, folder in test_folders.items():
        if test_set and not any(r.modality == modality for r in test_records):
            col.soft("no-queries", root / folder, "no test image in this modality")
    exp = spec.expected
    check_count(col, root, "identities", len({r.pid for r in records}), exp.get("identities"))
    check_count(col, root, "RGB images", sum(r.modality == "rgb" for r in records), exp.get("rgb_images"))
    check_count(col, root, "IR images", sum(r.modality == "ir" for r in records), exp.get("ir_images"))
    for name, want in (exp.get("splits") or {}).items():
        sel = [r for r in records if r.split == name]
        check_count(col, root, f"{name} identities", len({r.pid for r in sel}), want.get("identities"))
        for modality, label in (("rgb", "RGB"), ("ir", "IR")):
            if f"{modality}_images" in want:
                check_count(col, root, f"{name} {label} images", sum(r.modality == modality for r in sel),
                            want[f"{modality}_images"])
    col.raise_if_fatal(root)
    return Manifest(dataset=spec.name, root=str(root), records=records,
                    splits={"id_lists": {"test": sorted(test_ids)},
                            "training_splits": list(layout.get("training_splits", ["train"]))},
                    spec_hash=spec.content_hash, partial=col.allow_partial, warnings=col.warnings,
                    skipped=col.skipped)


def llcm_layout(manifest: Manifest) -> Dict[str, Dict[str, Dict[str, List[str]]]]:
    """``test_vis`` / ``test_nir`` -> camera folder -> 4-digit id -> sorted file names: the view
    the LLCM protocol samples from (the golden ``llcm_sampling_*.json``'s ``layout``)."""
    out: Dict[str, Dict[str, Dict[str, List[str]]]] = {}
    for r in manifest.records:
        if r.split != "test":
            continue
        folder, cam, pid, name = r.path.split("/")
        out.setdefault(folder, {}).setdefault(cam, {}).setdefault(pid, []).append(name)
    for cams in out.values():
        for ids in cams.values():
            for files in ids.values():
                files.sort()
    return out


def _samples(items: Any) -> List[Sample]:
    return [s if isinstance(s, Sample) else Sample(str(s[0]), int(s[1]), int(s[2])) for s in items]


def llcm_sets(manifest: Manifest, direction: str = "t2v", trials: Optional[Sequence[int]] = None,
              spec: Optional[DatasetSpec] = None) -> ProtocolSets:
    """LLCM query and per-trial galleries of one direction (``t2v``: IR-to-VIS, ``v2t``: VIS-to-IR).

    IR-to-VIS ranks every ``test_nir`` image against trial t's single-shot ``test_vis``
    sample. VIS-to-IR, as the reference computes it, ranks trial t's single-shot
    ``test_nir`` sample (rows) against every ``test_vis`` image (columns): the sets are
    ``transposed``. Uses the ``llcm`` branch's :func:`vireid.data.protocol.llcm_query` and
    :func:`~vireid.data.protocol.llcm_gallery`."""
    from vireid.data import protocol

    if not (hasattr(protocol, "llcm_query") and hasattr(protocol, "llcm_gallery")):
        raise ValueError("the LLCM test protocol is not installed: vireid.data.protocol has no llcm_query / "
                         "llcm_gallery (they come with the llcm branch)")
    spec = spec or READER.spec()
    if direction not in SETTING_NAMES:
        raise ValueError(f"direction must be one of {sorted(SETTING_NAMES)}, got {direction!r}")
    test_ids = manifest.splits.get("id_lists", {}).get("test")
    if not test_ids:
        raise ValueError("the manifest has no LLCM test id list (idx/test_id.txt)")
    proto = spec.evaluation
    trials = list(trials) if trials is not None else list(proto.trials if proto is not None else range(10))
    folders = spec.layout["test_folders"]
    layout = llcm_layout(manifest)
    vis, nir = folders["rgb"], folders["ir"]
    if direction == "t2v":
        query = _samples(protocol.llcm_query(layout, test_ids, nir))
        galleries = [_samples(protocol.llcm_gallery(layout, test_ids, vis, t)) for t in trials]
    else:
        query = _samples(protocol.llcm_query(layout, test_ids, vis))
        galleries = [_samples(protocol.llcm_gallery(layout, test_ids, nir, t)) for t in trials]
    return ProtocolSets(f"llcm/{direction}", query, galleries, trials, transposed=direction == "v2t")


class LlcmReader(DatasetReader):
    name = "llcm"
    settings = ("IR-to-VIS", "VIS-to-IR")
    root_hint = "idx/, test_vis/, test_nir/ and the training images (LLCM)"
    synth = SynthHook("pipeline.synth.llcm:write_llcm", default_images_per_camera=2, stream=4)

    def scan(self, root: Path, spec: DatasetSpec, col: Collector, jobs: int, progress: bool) -> Manifest:
        return scan_llcm(root, spec, col, jobs, progress)

    def protocol_sets(self, manifest: Manifest, options: Any, checkpoint: Mapping[str, Any]) -> Dict[str, ProtocolSets]:
        dirs = ["t2v", "v2t"] if options.direction == "both" else [options.direction]
        trial_list = list(range(options.trials)) if options.trials else None
        return {SETTING_NAMES[d]: llcm_sets(manifest, d, trials=trial_list, spec=self.spec()) for d in dirs}

    def metrics(self, distmat: Any, q_pids: Any, g_pids: Any, q_cams: Any, g_cams: Any) -> Any:
        from vireid.evaluation import llcm_metrics   # the llcm branch

        return llcm_metrics(distmat, q_pids, g_pids, q_cams, g_cams)

    def test_ids(self, manifest: Manifest, trial: Any = None) -> List[int]:
        return list(manifest.splits.get("id_lists", {}).get("test", []))

    def cmc_title(self, shot: str) -> str:
        return "LLCM CMC"


READER = LlcmReader()
