"""``vireid-prep verify``: check a heatmap cache end to end and list every problem.

Every problem names the file at fault; a row's problem names its shard, its row and the
source image it was made from. Shards are laid out by the manifest (records sorted by
path, ``shard_size`` per shard), so a shard that is missing or cannot be opened is
reported with the images it holds rather than as images absent from the cache. Every
row is read and compared with its checksums (:mod:`vireid.cache.rowsums`); shards written
before the checksums existed are noted, with how to add them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import h5py
import numpy as np

from vireid.cache import rowsums
from vireid.data.manifest import Manifest, ManifestError, Record
from vireid.cache.format import RESIZE_FILTER, resize_filter_of
from vireid.cache.reader import CACHE_FORMAT, MODALITY_CODES, compare_attributes, shard_name
from vireid.pose.joints import JOINT_NAMES, NUM_JOINTS

MODALITY_NAMES = {v: k for k, v in MODALITY_CODES.items()}
REPAIR_HINT = "`vireid-prep heatmaps --repair` with the build's arguments recomputes its images"


@dataclass
class CacheReport:
    """What :func:`inspect_cache` found: ``problems`` (one line each), the shards that are
    missing or cannot be read, and the rows whose content is wrong (shard -> rows)."""

    problems: List[str] = field(default_factory=list)
    bad_shards: List[int] = field(default_factory=list)
    bad_rows: Dict[int, List[int]] = field(default_factory=dict)
    unchecked_shards: List[int] = field(default_factory=list)     # written before row checksums
    notes: List[str] = field(default_factory=list)                # not problems: what to know
    resize_filter: str = ""                                       # how the crops were resized

    @property
    def ok(self) -> bool:
        return not self.problems


def _span(records: Sequence[Record]) -> str:
    if not records:
        return "no image"
    if len(records) == 1:
        return records[0].path
    return f"{records[0].path} ... {records[-1].path}"


def _row_fields(rec: Record, record_index: int) -> Dict[str, Any]:
    return {"path": rec.path, "record": record_index, "pid": rec.pid, "camid": rec.camid,
            "modality": MODALITY_CODES[rec.modality]}


def _compare_rows(f: h5py.File, expected: Sequence[Dict[str, Any]]) -> Dict[int, List[str]]:
    """Rows whose identity, camera, modality, record or path differ from the manifest's."""
    stored = {"path": list(f["path"].asstr()[()]), "record": f["record"][()], "pid": f["pid"][()],
              "camid": f["camid"][()], "modality": f["modality"][()]}
    out: Dict[int, List[str]] = {}
    for r, want in enumerate(expected):
        diffs = []
        if stored["path"][r] != want["path"]:
            diffs.append(f"path {stored['path'][r]!r} in the cache")
        if int(stored["record"][r]) != want["record"]:
            diffs.append(f"record {int(stored['record'][r])} in the cache, {want['record']} in the manifest")
        if int(stored["pid"][r]) != want["pid"]:
            diffs.append(f"identity {int(stored['pid'][r])} in the cache, {want['pid']} in the manifest")
        if int(stored["camid"][r]) != want["camid"]:
            diffs.append(f"camera {int(stored['camid'][r])} in the cache, {want['camid']} in the manifest")
        if int(stored["modality"][r]) != want["modality"]:
            have = MODALITY_NAMES.get(int(stored["modality"][r]), str(int(stored["modality"][r])))
            diffs.append(f"modality {have} in the cache, {MODALITY_NAMES[want['modality']]} in the manifest")
        if diffs:
            out[r] = diffs
    return out


def _check_checksums(f: h5py.File, conf: np.ndarray, kps: np.ndarray, held: Sequence[str]) -> Dict[int, List[str]]:
    """Rows whose image, heatmaps or metadata differ from their checksums, or cannot be read."""
    n = len(held)
    sums = f[rowsums.DATASET][()]
    if sums.shape != (n, 3):
        return {r: [f"the checksums of this shard are damaged (shape {sums.shape})"] for r in range(n)}
    meta = rowsums.metadata_digests(conf, kps, f["pid"][()], f["camid"][()], f["modality"][()], f["record"][()],
                                    held)
    out: Dict[int, List[str]] = {}
    for r in range(n):
        fields = [] if meta[r] == sums[r, rowsums.METADATA] else ["metadata"]
        for which, name in ((rowsums.IMAGE, "image"), (rowsums.HEATMAPS, "heatmaps")):
            try:
                if rowsums.digest(np.asarray(f[name][r])) != int(sums[r, which]):
                    fields.append(name)
            except Exception as exc:  # noqa: BLE001 - whatever a damaged chunk makes h5py raise
                fields.append(f"{name} (unreadable: {exc})")
        if fields:
            out[r] = [f"checksum mismatch ({', '.join(fields)})"]
    return out


def _touch_rows(f: h5py.File, n: int) -> Dict[int, List[str]]:
    """Rows of a shard without checksums whose image or heatmaps cannot be read (a corrupt
    chunk raises here); a changed byte is not seen."""
    out: Dict[int, List[str]] = {}
    for r in range(n):
        try:
            f["heatmaps"][r]
            f["image"][r]
        except Exception as exc:  # noqa: BLE001 - whatever a damaged chunk makes h5py raise
            out[r] = [f"cannot be read ({exc})"]
    return out


def _check_shard(path: Path, f: h5py.File, attrs: Mapping[str, Any], records: Sequence[Record], start: int,
                 report: CacheReport, s: int) -> List[str]:
    """Problems of one readable shard; returns the paths it holds."""
    problems = report.problems
    shard_attrs = json.loads(f.attrs["vireid_cache"])
    diffs = compare_attributes(shard_attrs, attrs)
    if diffs:
        problems.append(f"{path}: attributes differ from cache.json: " + "; ".join(diffs))
    n = int(f.attrs["rows"])
    skipped = {d["path"] for d in json.loads(f.attrs["skipped"])}
    hm_shape = (NUM_JOINTS, *attrs["heatmap_size"])
    if f["heatmaps"].shape != (n, *hm_shape):
        problems.append(f"{path}: heatmaps of shape {f['heatmaps'].shape}, expected {(n, *hm_shape)}")
    conf = f["confidence"][()]
    if not np.isfinite(conf).all() or (conf < 0).any() or (conf > 1).any():
        problems.append(f"{path}: confidence has NaN or values outside [0, 1]")
    kps = f["keypoints"][()]
    if np.isinf(kps).any() or (np.isnan(kps).any(axis=-1) != (conf == 0)).any():
        problems.append(f"{path}: keypoints are NaN exactly where the confidence is not 0")
    held = list(f["path"].asstr()[()])
    expected = [_row_fields(rec, start + k) for k, rec in enumerate(records) if rec.path not in skipped]
    sources = [e["path"] for e in expected] if len(expected) == n else held
    if rowsums.DATASET in f:
        bad = _check_checksums(f, conf, kps, held)
    else:
        bad = _touch_rows(f, n)
        report.unchecked_shards.append(s)
    if records and len(expected) == n:
        for r, diffs in _compare_rows(f, expected).items():
            bad.setdefault(r, []).extend(diffs)
    elif records:
        report.bad_shards.append(s)
        problems.append(f"{path}: holds {n} row(s) and {len(skipped)} skipped image(s), but its part of the "
                        f"manifest has {len(records)} image(s) ({_span(records)}); {REPAIR_HINT}")
    for r in sorted(bad):
        problems.append(f"{path}: row {r} ({sources[r]}): " + "; ".join(bad[r]))
    if bad:
        report.bad_rows.setdefault(s, []).extend(sorted(bad))
    return held


def inspect_cache(root: "str | Path", manifest_path: Optional["str | Path"] = None,
                  manifest: Optional[Manifest] = None) -> CacheReport:
    """Check the cache at ``root`` against its manifest (default ``root/manifest.json``).

    Checks: cache.json, index.json and every shard readable; each shard's attributes equal
    cache.json's; every row's path, record, identity, camera and modality equal the
    manifest's; every image of the manifest present exactly once (or listed in
    skipped.json); index rows match the shards; no NaN or out-of-range confidence; heatmap
    and image shapes as declared; the manifest's hash equals the one the cache records.
    ``manifest`` (already loaded) takes the place of ``manifest_path``.
    """
    root = Path(root)
    report = CacheReport()
    problems = report.problems
    try:
        attrs = json.loads((root / "cache.json").read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"{root / 'cache.json'}: unreadable ({exc})")
        return report
    report.resize_filter = resize_filter_of(attrs)
    if "resize_filter" not in attrs:
        report.notes.append(f"{root}: crops resized with {report.resize_filter}: OpenCV's INTER_LINEAR, not "
                            f"anti-aliased; a cache made now resizes with {RESIZE_FILTER} (the release's filter)")
    if attrs.get("format") != CACHE_FORMAT:
        problems.append(f"{root / 'cache.json'}: format {attrs.get('format')!r}, expected {CACHE_FORMAT}")
    if attrs.get("joint_names") != list(JOINT_NAMES):
        problems.append(f"{root / 'cache.json'}: joint names differ from the LIP schema")
    try:
        manifest = manifest or Manifest.load(manifest_path or root / "manifest.json")
    except ManifestError as exc:
        problems.append(str(exc))
        return report
    same_manifest = manifest.hash == attrs.get("manifest_hash")
    if not same_manifest:
        problems.append(f"{root}: built from manifest {str(attrs.get('manifest_hash'))[:12]}, "
                        f"the manifest given has hash {manifest.hash[:12]}")
    try:
        index = json.loads((root / "index.json").read_text())
        if not isinstance(index, dict):
            raise ValueError(f"a {type(index).__name__}, not a mapping")
    except (OSError, ValueError) as exc:
        problems.append(f"{root / 'index.json'}: missing or unreadable ({exc}): the cache is incomplete or "
                        f"damaged; `vireid-prep heatmaps --repair` (or the build's command) writes it")
        index = None
    size = int(attrs.get("shard_size") or 1)
    n_shards = -(-int(attrs["num_records"]) // size) if attrs.get("num_records") else 0
    expected_shards = [shard_name(s) for s in range(n_shards)]
    if index is not None and index.get("shards") != expected_shards:
        problems.append(f"{root / 'index.json'}: lists {len(index.get('shards', []))} shards, expected {n_shards}")
    seen: List[str] = []
    skipped: List[str] = []
    accounted: List[str] = []          # images of shards that are missing or unreadable: named there
    for s, name in enumerate(expected_shards):
        path = root / name
        records = manifest.records[s * size:(s + 1) * size] if same_manifest else []
        if not path.is_file():
            report.bad_shards.append(s)
            accounted += [r.path for r in records]
            problems.append(f"{path}: shard missing: it should hold {len(records)} image(s) of the manifest "
                            f"({_span(records)}); {REPAIR_HINT}")
            continue
        try:
            with h5py.File(path, "r") as f:
                skipped += [d["path"] for d in json.loads(f.attrs["skipped"])]
                seen += _check_shard(path, f, attrs, records, s * size, report, s)
        except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes h5py raise
            report.bad_shards.append(s)
            accounted += [r.path for r in records]
            problems.append(f"{path}: damaged shard (unreadable: {exc}): it holds {len(records)} image(s) of the "
                            f"manifest ({_span(records)}); {REPAIR_HINT}")
    if index is not None and index.get("paths") != seen and not report.bad_shards:
        problems.append(f"{root / 'index.json'}: entries do not match the shards' rows")
    wanted = [r.path for r in manifest.records]
    have = set(seen) | set(skipped) | set(accounted)
    missing = [p for p in wanted if p not in have]
    if missing:
        problems.append(f"{root}: {len(missing)} manifest image(s) absent from the cache, e.g. {missing[0]}")
    if len(seen) != len(set(seen)):
        problems.append(f"{root}: an image is stored twice")
    extra = set(seen) - set(wanted)
    if extra:
        problems.append(f"{root}: {len(extra)} cached image(s) not in the manifest, e.g. {sorted(extra)[0]}")
    if report.unchecked_shards:
        k = len(report.unchecked_shards)
        report.notes.append(f"{root}: {k} of {n_shards} shard(s) have no row checksums (written before they "
                            f"existed), so a changed byte in them goes unnoticed; add them without recomputing "
                            f"any heatmap: `vireid-prep checksum {root}` (or `vireid-prep heatmaps --repair` with "
                            f"the build's arguments)")
    if problems and (report.bad_rows or report.bad_shards):
        rows = sum(len(v) for v in report.bad_rows.values())
        report.notes.append(f"{root}: {rows} damaged row(s) and {len(report.bad_shards)} damaged or missing "
                            f"shard(s): `vireid-prep heatmaps --repair` with the build's arguments recomputes only "
                            f"those")
    return report

