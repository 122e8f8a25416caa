"""SYSU-MM01 (Wu et al., ICCV 2017): ``camN/<4-digit id>/<4-digit>.jpg`` and ``exp/*_id.txt``.

The scanner, the training split (records of the train + val lists), the test protocol
(all / indoor search, single / multi shot, 10 seeded gallery trials, the golden
``sysu_sampling_*.json``) and its metric (camera-2 gallery dropped for camera-3 queries,
identities de-duplicated in the CMC), and the synthesizer hook.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from vireid.data.manifest import Manifest
from vireid.data.protocol import sysu_gallery, sysu_query
from vireid.data.protocol_sets import ProtocolSets
from vireid.data.readers import DatasetReader, SynthHook
from vireid.data.readers.common import camera_images, read_id_list
from vireid.data.scan_checks import Collector, check_count, list_dir, records_from_images
from vireid.data.spec import DatasetSpec, load_spec

SETTING_NAMES = {"all": "All-search", "indoor": "Indoor-search"}


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


def sysu_sets(manifest: Manifest, mode: str = "all", shot: str = "single",
              trials: Sequence[int] | None = None, spec: DatasetSpec | None = None) -> ProtocolSets:
    """SYSU-MM01 query and per-trial galleries over the manifest's test identities."""
    spec = spec or load_spec("sysu")
    proto = spec.evaluation
    test_ids = manifest.splits.get("id_lists", {}).get("test")
    if not test_ids:
        raise ValueError("the manifest has no SYSU-MM01 test id list (exp/test_id.txt)")
    trials = list(trials) if trials is not None else list(proto.trials)
    layout = manifest.layout()
    gallery_cameras = {m: list(c) for m, c in proto.gallery_cameras.items()}
    query = sysu_query(layout, test_ids, mode, query_cameras=list(proto.query_cameras))
    num_shots = int(proto.multi_shot or 10)
    galleries = [sysu_gallery(layout, test_ids, mode, trial=t, shot=shot, gallery_cameras=gallery_cameras,
                              num_shots=num_shots) for t in trials]
    return ProtocolSets(f"sysu/{mode}/{shot}", query, galleries, trials)

class SysuReader(DatasetReader):
    name = "sysu"
    has_val_split = True
    has_shots = True
    settings = ("All-search", "Indoor-search")
    root_hint = "cam1..cam6 and exp/ (SYSU-MM01)"
    synth = SynthHook("pipeline.synth.sysu:write_sysu", default_images_per_camera=4, stream=1)

    def scan(self, root: Path, spec: DatasetSpec, col: Collector, jobs: int, progress: bool) -> Manifest:
        return scan_sysu(root, spec, col, jobs, progress)

    def protocol_sets(self, manifest: Manifest, options: Any, checkpoint: Mapping[str, Any]) -> Dict[str, ProtocolSets]:
        modes = ["all", "indoor"] if options.mode == "both" else [options.mode]
        trial_list = list(range(options.trials)) if options.trials else None
        return {SETTING_NAMES[m]: sysu_sets(manifest, m, options.shot, trials=trial_list, spec=self.spec())
                for m in modes}

    def metrics(self, distmat: Any, q_pids: Any, g_pids: Any, q_cams: Any, g_cams: Any) -> Any:
        from vireid.evaluation import sysu_metrics

        return sysu_metrics(distmat, q_pids, g_pids, q_cams, g_cams)

    def test_ids(self, manifest: Manifest, trial: Any = None) -> List[int]:
        return list(manifest.splits.get("id_lists", {}).get("test", []))

    def cmc_title(self, shot: str) -> str:
        return f"SYSU CMC ({shot} shot)"


READER = SysuReader()
