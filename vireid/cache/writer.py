"""Writing heatmap cache shards (format: :mod:`vireid.cache.format`), and reading a whole
shard's rows back as they are stored (to repair a shard or add checksums to it).

A shard is written in one go, atomically (:func:`vireid.io.atomic_path`), with the
per-row checksums of :mod:`vireid.cache.rowsums`; the same rows give the same bytes, so a
shard rebuilt from rows read back (plus recomputed ones) is byte-identical to the first.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import h5py
import numpy as np

from vireid.cache import rowsums
from vireid.cache.format import CACHE_FORMAT
from vireid.io import PathLike, atomic_path, atomic_write_json
from vireid.pose.joints import NUM_JOINTS


@dataclass
class Row:
    """One image's row as stored."""

    image: np.ndarray            # encoded (see vireid.cache.format.encode_image)
    heatmaps: np.ndarray         # (16, Hm, Wm) uint8
    confidence: np.ndarray       # (16,) float32
    keypoints: np.ndarray        # (16, 2) float32
    pid: int
    camid: int
    modality: int
    record: int
    path: str


@dataclass
class ShardRows:
    """The rows of one shard, in order (built by the heatmap job)."""

    images: List[np.ndarray] = field(default_factory=list)   # encoded (see encode_image)
    heatmaps: List[np.ndarray] = field(default_factory=list)  # (16, Hm, Wm) uint8
    confidence: List[np.ndarray] = field(default_factory=list)
    keypoints: List[np.ndarray] = field(default_factory=list)
    pid: List[int] = field(default_factory=list)
    camid: List[int] = field(default_factory=list)
    modality: List[int] = field(default_factory=list)
    record: List[int] = field(default_factory=list)
    path: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.path)

    def append(self, row: Row) -> None:
        self.images.append(row.image)
        self.heatmaps.append(row.heatmaps)
        self.confidence.append(row.confidence)
        self.keypoints.append(row.keypoints)
        self.pid.append(int(row.pid))
        self.camid.append(int(row.camid))
        self.modality.append(int(row.modality))
        self.record.append(int(row.record))
        self.path.append(row.path)


def write_shard(target: PathLike, rows: ShardRows, attrs: Mapping[str, Any], shard_index: int,
                skipped: Sequence[Mapping[str, str]] = ()) -> None:
    """Write one shard atomically: a killed writer never leaves a file under ``target``."""
    n = len(rows)
    config_hw = tuple(attrs["input_size"])
    hm_hw = tuple(attrs["heatmap_size"])
    confidence = np.asarray(rows.confidence, np.float32).reshape(n, NUM_JOINTS)
    keypoints = np.asarray(rows.keypoints, np.float32).reshape(n, NUM_JOINTS, 2)
    pid = np.asarray(rows.pid, np.int32)
    camid = np.asarray(rows.camid, np.int16)
    modality = np.asarray(rows.modality, np.uint8)
    record = np.asarray(rows.record, np.int64)
    heatmaps = [np.asarray(h, np.uint8) for h in rows.heatmaps]
    sums = rowsums.row_digests(rows.images, heatmaps, confidence, keypoints, pid, camid, modality, record, rows.path)
    with atomic_path(target, suffix=".h5") as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            hm_empty = np.zeros((0, NUM_JOINTS, *hm_hw), np.uint8)
            if attrs["image_format"] == "raw":
                # uncompressed and contiguous: a row is one byte range of the file, read by
                # HeatmapCache with a single pread (no HDF5 chunk lookup or filter pipeline)
                ds = f.create_dataset("image", shape=(n, *config_hw, 3), dtype=np.uint8)
                if n:
                    ds[...] = np.stack(rows.images)
                f.create_dataset("heatmaps", data=np.stack(heatmaps) if n else hm_empty)
            else:
                ds = f.create_dataset("image", shape=(n,), dtype=h5py.vlen_dtype(np.uint8), chunks=(max(1, min(n, 64)),))
                for i, buf in enumerate(rows.images):
                    ds[i] = buf
                f.create_dataset("heatmaps", data=np.stack(heatmaps) if n else hm_empty,
                                 chunks=(1, NUM_JOINTS, *hm_hw), compression="gzip", compression_opts=4, shuffle=True)
            f.create_dataset("confidence", data=confidence)
            f.create_dataset("keypoints", data=keypoints)
            f.create_dataset("pid", data=pid)
            f.create_dataset("camid", data=camid)
            f.create_dataset("modality", data=modality)
            f.create_dataset("record", data=record)
            f.create_dataset("path", data=np.asarray(rows.path, dtype=object), dtype=h5py.string_dtype())
            f.create_dataset(rowsums.DATASET, data=sums)
            f.attrs["vireid_cache"] = json.dumps(dict(attrs), sort_keys=True)
            f.attrs["shard_index"] = shard_index
            f.attrs["rows"] = n
            f.attrs["skipped"] = json.dumps(list(skipped))
            f.attrs["row_checksum"] = rowsums.ALGORITHM


def read_shard_attrs(path: PathLike) -> Dict[str, Any]:
    with h5py.File(path, "r") as f:
        return {"attrs": json.loads(f.attrs["vireid_cache"]), "shard_index": int(f.attrs["shard_index"]),
                "rows": int(f.attrs["rows"]), "skipped": json.loads(f.attrs["skipped"]),
                "row_checksum": f.attrs.get("row_checksum")}


def read_shard_rows(path: PathLike) -> Tuple[List[Row], List[Dict[str, str]]]:
    """Every row of a shard as stored (no decode), and its skipped list; raises ``OSError``,
    ``KeyError`` or ``ValueError`` for a shard that cannot be read."""
    with h5py.File(path, "r") as f:
        n = int(f.attrs["rows"])
        image, heatmaps = f["image"], f["heatmaps"]
        meta = {k: f[k][()] for k in ("confidence", "keypoints", "pid", "camid", "modality", "record")}
        paths = list(f["path"].asstr()[()])
        rows = [Row(image=np.asarray(image[r]), heatmaps=np.asarray(heatmaps[r]), confidence=meta["confidence"][r],
                    keypoints=meta["keypoints"][r], pid=int(meta["pid"][r]), camid=int(meta["camid"][r]),
                    modality=int(meta["modality"][r]), record=int(meta["record"][r]), path=paths[r])
                for r in range(n)]
        return rows, json.loads(f.attrs["skipped"])


def write_index(root: PathLike, shards: Sequence[str],
                scan_skipped: Sequence[Mapping[str, str]] = ()) -> Dict[str, Any]:
    """Build ``index.json`` from the shards on disk (atomically); returns it. ``skipped.json``
    lists ``scan_skipped`` (images the scan left out) and then those the shards skipped.
    ``row_checksum`` names the row hash when every shard carries one (else ``None``)."""
    root = Path(root)
    paths: List[str] = []
    locations: List[List[int]] = []
    skipped: List[Dict[str, str]] = [dict(d) for d in scan_skipped]
    algorithms = set()
    for s, name in enumerate(shards):
        with h5py.File(root / name, "r") as f:
            for r, p in enumerate(f["path"].asstr()[()]):
                paths.append(p)
                locations.append([s, r])
            skipped.extend(json.loads(f.attrs["skipped"]))
            algorithms.add(f.attrs.get("row_checksum"))
    index = {"format": CACHE_FORMAT, "shards": list(shards), "paths": paths, "locations": locations,
             "count": len(paths), "skipped": len(skipped),
             "row_checksum": algorithms.pop() if len(algorithms) == 1 else None}
    atomic_write_json(root / "skipped.json", skipped)
    atomic_write_json(root / "index.json", index, indent=None)
    return index
