"""Manifests: one record per image of a dataset, with a stable content hash.

A manifest is what ``vireid-prep manifest`` writes after scanning a dataset root
(:mod:`vireid.data.scan`). Every later stage (heatmap shards, checkpoints, results)
records :attr:`Manifest.hash`, so a result always says which data it came from. The
hash covers the dataset name, every record (relative path, identity, camera, split,
image size, byte size and a sha1 of the file's bytes) and the split tables, sorted;
it does not cover the absolute root, so moving a dataset keeps its hash, while
changing, adding or removing any file changes it.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from vireid.io import PathLike, atomic_write_json

MANIFEST_FORMAT = "vireid-manifest/1"


class ManifestError(ValueError):
    """A manifest file is unreadable, of another format, or inconsistent."""


@dataclass(frozen=True)
class Record:
    """One image. ``pid`` is the dataset's own identity number (SYSU folder id, RegDB
    folder id, LIP running index); ``camid`` the 1-based camera number of the protocol."""

    path: str                 # relative to the dataset root, '/'-separated
    pid: int
    camera: str               # 'cam1'..'cam6', 'Visible'/'Thermal', or '' (LIP)
    camid: int
    modality: str             # 'rgb' | 'ir'
    split: str                # SYSU: train|val|test|none; RegDB: '' (per-trial tables); LIP: train|val
    height: int
    width: int
    nbytes: int
    sha1: str
    keypoints: Optional[List[List[Optional[float]]]] = None   # LIP: 16 x (x, y, occluded); None = nan

    def to_json(self) -> Dict[str, Any]:
        doc = asdict(self)
        if doc["keypoints"] is None:
            del doc["keypoints"]
        return doc

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> "Record":
        return Record(**{k: doc[k] for k in doc})


@dataclass
class Manifest:
    dataset: str
    root: str
    records: List[Record]
    #: split tables that are not a property of one record. RegDB:
    #: ``{"trial:1": {"train:visible": [[path, label], ...], ...}}``; SYSU: the id lists.
    splits: Dict[str, Any] = field(default_factory=dict)
    spec_hash: str = ""
    partial: bool = False
    warnings: List[str] = field(default_factory=list)
    #: images of the root left out because they could not be read (``{"path", "reason"}``);
    #: not records, so not in the hash
    skipped: List[Dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.records = sorted(self.records, key=lambda r: r.path)

    @property
    def hash(self) -> str:
        """Stable sha256 of the content (see module docstring)."""
        payload = {
            "format": MANIFEST_FORMAT,
            "dataset": self.dataset,
            "records": [r.to_json() for r in self.records],
            "splits": self.splits,
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
        return hashlib.sha256(blob).hexdigest()

    def by_path(self) -> Dict[str, Record]:
        return {r.path: r for r in self.records}

    def select(self, *, split: Optional[Iterable[str]] = None, modality: Optional[str] = None,
               cameras: Optional[Sequence[str]] = None, pids: Optional[Iterable[int]] = None) -> List[Record]:
        splits = set(split) if split is not None else None
        camset = set(cameras) if cameras is not None else None
        pidset = set(pids) if pids is not None else None
        return [r for r in self.records
                if (splits is None or r.split in splits)
                and (modality is None or r.modality == modality)
                and (camset is None or r.camera in camset)
                and (pidset is None or r.pid in pidset)]

    def layout(self, cameras: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, List[str]]]:
        """``camera -> 4-digit id -> sorted file names``: the view the SYSU protocol samples from."""
        out: Dict[str, Dict[str, List[str]]] = {}
        for r in self.records:
            if cameras is not None and r.camera not in cameras:
                continue
            out.setdefault(r.camera, {}).setdefault(f"{r.pid:04d}", []).append(r.path.rsplit("/", 1)[-1])
        for ids in out.values():
            for files in ids.values():
                files.sort()
        return out

    def counts(self) -> Dict[str, int]:
        out: Dict[str, int] = {"images": len(self.records), "identities": len({r.pid for r in self.records})}
        for r in self.records:
            out[f"{r.modality}_images"] = out.get(f"{r.modality}_images", 0) + 1
        return out

    def to_json(self) -> Dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "dataset": self.dataset,
            "root": self.root,
            "hash": self.hash,
            "spec_hash": self.spec_hash,
            "partial": self.partial,
            "warnings": self.warnings,
            "skipped": self.skipped,
            "counts": self.counts(),
            "splits": self.splits,
            "records": [r.to_json() for r in self.records],
        }

    def save(self, path: PathLike) -> None:
        """Write atomically (temporary file, then rename)."""
        atomic_write_json(path, self.to_json(), indent=None)

    @staticmethod
    def load(path: PathLike, verify_hash: bool = True) -> "Manifest":
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise ManifestError(f"{path}: manifest not found (create it with `vireid-prep manifest`)") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{path}: not a readable manifest: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"{path}: not a {MANIFEST_FORMAT} file (format={doc.get('format') if isinstance(doc, dict) else None!r})")
        try:
            records = [Record.from_json(r) for r in doc["records"]]
        except (KeyError, TypeError) as exc:
            raise ManifestError(f"{path}: malformed record: {exc}") from exc
        manifest = Manifest(dataset=doc["dataset"], root=doc["root"], records=records, splits=doc.get("splits", {}),
                            spec_hash=doc.get("spec_hash", ""), partial=bool(doc.get("partial", False)),
                            warnings=list(doc.get("warnings", [])), skipped=list(doc.get("skipped", [])))
        if verify_hash and manifest.hash != doc.get("hash"):
            raise ManifestError(f"{path}: content hash {manifest.hash[:12]} differs from the recorded "
                                f"{str(doc.get('hash'))[:12]}: the file was edited; rescan the dataset")
        return manifest


def keypoints_to_json(values: Sequence[float]) -> List[List[Optional[float]]]:
    """``48`` floats (x, y, occluded per joint, NaN for missing) -> 16 rows with None for NaN."""
    rows = []
    for j in range(0, len(values), 3):
        rows.append([None if (isinstance(v, float) and math.isnan(v)) else float(v) for v in values[j:j + 3]])
    return rows
