"""Feature files (``vireid-extract``): features of a set of images with where they came from.

One HDF5 file, written atomically (temporary name, then rename):

================  ==================  ==================================================
dataset           shape, type         content
================  ==================  ==================================================
features          (N, D) float32      L2-normalised features (``FeatureExtractor``)
paths             (N,) str            image paths relative to the ``root`` attribute
modality          (N,) int8           0 RGB, 1 IR (as the network was run)
pid, camid        (N,) int32          identity and camera where known, else -1
================  ==================  ==================================================

The attribute ``meta`` (JSON) holds ``format`` (``vireid-features/1``), ``checkpoint``,
``checkpoint_sha256``, ``feature`` (f_id | f_all), ``flip``, ``dim``, ``input_size``,
``root``, ``source`` (folder | manifest, its path, the manifest hash), ``items_sha256``
(the image list), ``count`` and ``code_version``.

**Resumable.** :class:`ExtractionJob` extracts in chunks of ``chunk_size`` images, each
saved atomically under ``.<out name>.parts/`` with a ``job.json`` saying what is being
extracted; the same command after an interruption skips the finished chunks. The file
itself is written when every chunk is there, and the parts are then removed. A partial
extraction or an existing file made with another checkpoint, feature type or flip is
refused with :class:`FeatureFileMismatch` (never mixed).
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from vireid.io import PathLike, atomic_path, atomic_write_json

log = logging.getLogger(__name__)

FEATURES_FORMAT = "vireid-features/1"
PARTS_FORMAT = "vireid-features-parts/1"
#: What must agree between features that are compared or combined.
ORIGIN_KEYS = ("checkpoint_sha256", "feature", "flip")


class FeatureFileError(ValueError):
    """A feature file (or a partial extraction) is missing, unreadable or not ours."""


class FeatureFileMismatch(FeatureFileError):
    """Features of another checkpoint, feature type or flip setting than the ones asked for."""


def describe_origin(meta: Mapping[str, Any]) -> str:
    sha = str(meta.get("checkpoint_sha256", ""))[:12]
    return (f"checkpoint {meta.get('checkpoint')} (sha256 {sha}), feature {meta.get('feature')}, "
            f"flip {'on' if meta.get('flip') else 'off'}")


def check_origin(where: str, have: Mapping[str, Any], want: Mapping[str, Any]) -> None:
    """Raise :class:`FeatureFileMismatch` unless ``have`` and ``want`` agree on :data:`ORIGIN_KEYS`."""
    differ = [k for k in ORIGIN_KEYS if have.get(k) != want.get(k)]
    if differ:
        verb = "differs" if len(differ) == 1 else "differ"
        raise FeatureFileMismatch(f"{where} holds features of {describe_origin(have)}, not of "
                                  f"{describe_origin(want)} ({', '.join(differ)} {verb})")


@dataclass
class FeatureFile:
    """A loaded feature file."""

    path: Path
    features: np.ndarray
    paths: List[str]
    modality: np.ndarray
    pid: np.ndarray
    camid: np.ndarray
    meta: Dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    def image_path(self, i: int) -> Path:
        return Path(self.meta.get("root", "")) / self.paths[i]

    @staticmethod
    def load(path: PathLike) -> "FeatureFile":
        import h5py

        path = Path(path)
        if not path.is_file():
            raise FeatureFileError(f"{path}: feature file not found (make one with vireid-extract)")
        try:
            with h5py.File(path, "r") as fh:
                meta = json.loads(fh.attrs["meta"])
                if meta.get("format") != FEATURES_FORMAT:
                    raise FeatureFileError(f"{path}: not a {FEATURES_FORMAT} file")
                return FeatureFile(path, fh["features"][()], [p.decode() if isinstance(p, bytes) else p
                                                             for p in fh["paths"][()]],
                                   fh["modality"][()], fh["pid"][()], fh["camid"][()], meta)
        except FeatureFileError:
            raise
        except (OSError, KeyError, ValueError) as exc:
            raise FeatureFileError(f"{path}: not a readable feature file ({exc})") from None


def write_feature_file(out: PathLike, features: np.ndarray, paths: Sequence[str], modality: np.ndarray,
                       pid: np.ndarray, camid: np.ndarray, meta: Mapping[str, Any]) -> Path:
    """Write a feature file atomically."""
    import h5py

    out = Path(out)
    doc = dict(meta, format=FEATURES_FORMAT, count=len(paths))
    with atomic_path(out, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as fh:
            fh.create_dataset("features", data=np.asarray(features, np.float32))
            fh.create_dataset("paths", data=list(paths), dtype=h5py.string_dtype())
            fh.create_dataset("modality", data=np.asarray(modality, np.int8))
            fh.create_dataset("pid", data=np.asarray(pid, np.int32))
            fh.create_dataset("camid", data=np.asarray(camid, np.int32))
            fh.attrs["meta"] = json.dumps(doc)
    return out


def items_digest(names: Sequence[str], items: Sequence[Any]) -> str:
    """sha256 of the image list (names, requested modality, identity, camera)."""
    rows = [[n, it.modality, int(it.pid), int(it.camid)] for n, it in zip(names, items)]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


@dataclass
class JobResult:
    path: Path
    count: int
    chunks_reused: int
    chunks_extracted: int


class ExtractionJob:
    """Extract ``items`` (shown as ``names``, relative to ``meta['root']``) with ``extractor``
    into the feature file ``out``, resumably (see the module docstring)."""

    def __init__(self, extractor: Any, items: Sequence[Any], names: Sequence[str], out: PathLike,
                 meta: Mapping[str, Any], chunk_size: int = 1024, overwrite: bool = False) -> None:
        if len(items) != len(names):
            raise ValueError(f"{len(items)} items for {len(names)} names")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.extractor, self.items, self.names = extractor, list(items), list(names)
        self.out = Path(out)
        self.parts = self.out.parent / f".{self.out.name}.parts"
        self.chunk_size = int(chunk_size)
        self.overwrite = overwrite
        self.meta = dict(meta, **extractor.describe(), items_sha256=items_digest(self.names, self.items))

    def _chunk_path(self, index: int) -> Path:
        return self.parts / f"chunk-{index:06d}.npz"

    def _check_existing(self) -> bool:
        """True when ``out`` already holds exactly this extraction."""
        if not self.out.exists() or self.overwrite:
            return False
        have = FeatureFile.load(self.out).meta
        check_origin(str(self.out), have, self.meta)
        if have.get("items_sha256") != self.meta["items_sha256"]:
            raise FeatureFileError(f"{self.out} exists and holds features of other images: choose another "
                                   f"--out or pass --overwrite")
        return True

    def _open_parts(self, restart: bool) -> None:
        job = {"format": PARTS_FORMAT, "chunk_size": self.chunk_size, "count": len(self.items),
               **{k: self.meta[k] for k in (*ORIGIN_KEYS, "checkpoint", "items_sha256")}}
        record = self.parts / "job.json"
        if restart and self.parts.exists():
            shutil.rmtree(self.parts)
        if record.is_file():
            try:
                have = json.loads(record.read_text())
            except (OSError, ValueError) as exc:
                raise FeatureFileError(f"{record}: unreadable ({exc}); pass --restart to discard it") from None
            check_origin(f"{self.parts} (an interrupted extraction; --restart discards it)", have, job)
            if (have.get("items_sha256"), have.get("chunk_size")) != (job["items_sha256"], job["chunk_size"]):
                raise FeatureFileError(f"{self.parts} is an interrupted extraction of other images or another "
                                       f"--chunk-size: rerun it as it was, or pass --restart to discard it")
        else:
            self.parts.mkdir(parents=True, exist_ok=True)
            atomic_write_json(record, job)

    def run(self, progress: bool = False, restart: bool = False) -> JobResult:
        from tqdm.auto import tqdm

        num_chunks = -(-len(self.items) // self.chunk_size)
        if self._check_existing():
            log.info("%s already holds these %d features", self.out, len(self.items))
            return JobResult(self.out, len(self.items), num_chunks, 0)
        self._open_parts(restart)
        done = [i for i in range(num_chunks) if self._chunk_path(i).is_file()]
        bar = tqdm(total=len(self.items), initial=sum(self._chunk_len(i) for i in done), unit="img",
                   desc="features", disable=not progress)
        for index in range(num_chunks):
            if index in done:
                continue
            lo = index * self.chunk_size
            chunk = self.items[lo:lo + self.chunk_size]
            feats, mods = [], []
            for start in range(0, len(chunk), self.extractor.batch_size):
                part = chunk[start:start + self.extractor.batch_size]
                f, m = self.extractor.extract_items(part, return_modality=True)
                feats.append(f)
                mods.append(m)
                bar.update(len(part))
            with atomic_path(self._chunk_path(index), suffix=".npz") as tmp:
                np.savez(tmp, features=np.concatenate(feats), modality=np.concatenate(mods))
        bar.close()
        self._assemble(num_chunks)
        return JobResult(self.out, len(self.items), len(done), num_chunks - len(done))

    def _chunk_len(self, index: int) -> int:
        return min(self.chunk_size, len(self.items) - index * self.chunk_size)

    def _assemble(self, num_chunks: int) -> None:
        feats, mods = [], []
        for index in range(num_chunks):
            with np.load(self._chunk_path(index)) as part:
                if len(part["features"]) != self._chunk_len(index):
                    raise FeatureFileError(f"{self._chunk_path(index)}: wrong length; pass --restart")
                feats.append(part["features"])
                mods.append(part["modality"])
        dim = int(self.meta["dim"])
        write_feature_file(self.out, np.concatenate(feats) if feats else np.zeros((0, dim), np.float32),
                           self.names, np.concatenate(mods) if mods else np.zeros(0, np.int8),
                           np.array([it.pid for it in self.items], np.int32),
                           np.array([it.camid for it in self.items], np.int32), self.meta)
        shutil.rmtree(self.parts)
