"""``vireid-prep heatmaps``: run a pose estimator over every image of a manifest and cache
the heatmaps in HDF5 shards (format: :mod:`vireid.cache.reader`).

The job is resumable and safe:

* the manifest's records (sorted by path) are cut into fixed shards of ``shard_size``
  images, so shard ``k`` always holds the same images;
* each shard is written under a temporary name and renamed when complete; a rerun skips
  shards that exist with the same attributes, so a killed run (Ctrl-C, kill -9) resumes
  and ends with a cache identical to an uninterrupted one;
* a lock file keeps a second process from writing the same shards; ``part=(k, n)``
  splits the shards between processes or GPUs (shard ``s`` belongs to part ``s % n``),
  one writer per shard; whichever part finishes last writes ``index.json``;
* an unreadable image stops the job with its path (``on_error="fail"``) or is skipped and
  listed with the reason in ``skipped.json`` (``on_error="skip"``): never a silent hole;
  the images the scan left out (``manifest.skipped``) are listed there too;
* every image's bytes are checked against the manifest's sha1 as they are read: a file
  changed after the manifest was made stops the job with its path (whatever ``on_error``);
* under its lock a run first removes the temporary files a killed writer of its own
  shards left behind.

Geometry: each crop is resized to the cache's ``input_size`` (288x144 by default, the
training input, ignoring the crop's aspect ratio as the SYSU/RegDB baselines do) with an
anti-aliasing filter (:func:`vireid.cache.format.resize_crop`, recorded as ``cache.json``'s
``resize_filter``); the
estimator's keypoints (in the original crop's pixels) are mapped to that size with the
pixel-centre convention ``x' = (x + 0.5) * W'/W - 0.5`` and rendered as Gaussians of
peak 1 and ``sigma`` input pixels on the stride-``stride`` grid (72x36) by the cache's
heatmap codec (:attr:`vireid.cache.format.CacheConfig.codec`, the one that decodes them).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np
from joblib import Parallel, delayed

from pipeline.estimators.base import PoseEstimator
from vireid.data.images import load_image
from vireid.data.manifest import Manifest, Record
from vireid.cache.writer import Row, ShardRows, read_shard_attrs, write_index, write_shard
from vireid.cache.format import resize_crop
from vireid.cache.reader import (CacheConfig, CacheError, MODALITY_CODES, cache_attributes, compare_attributes,
                                encode_image, quantize_heatmaps, shard_name)
from vireid.io import atomic_write_json, remove_stale_temporaries
from vireid.pose.joints import NUM_JOINTS

log = logging.getLogger(__name__)


class JobError(RuntimeError):
    """The heatmap job cannot go on; the message names the file at fault."""


@dataclass
class JobResult:
    shards_written: int = 0
    shards_skipped: int = 0
    images: int = 0
    images_skipped: int = 0
    seconds: float = 0.0
    complete: bool = False
    skipped: List[Dict[str, str]] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


@contextmanager
def cache_lock(root: Path, part: Tuple[int, int]) -> Iterator[None]:
    """An exclusive, non-blocking lock per (cache, part); released if the process dies."""
    root.mkdir(parents=True, exist_ok=True)
    name = ".lock" if part[1] == 1 else f".lock-{part[0]}-of-{part[1]}"
    fh = open(root / name, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise JobError(f"{root}: another vireid-prep process (pid {holder}) is writing this cache") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fh.close()


@dataclass(frozen=True)
class Changed:
    """An image whose bytes are not those the manifest recorded."""

    sha1: str


def read_image(path: Path, sha1: Optional[str] = None) -> "np.ndarray | str | Changed":
    """BGR uint8 image, the reason it cannot be used, or :class:`Changed` when its bytes'
    sha1 is not ``sha1`` (hashing costs a few percent of the decode)."""
    loaded = load_image(path)
    if isinstance(loaded, str):
        return loaded
    image, data = loaded
    if sha1 is not None:
        have = hashlib.sha1(data).hexdigest()
        if have != sha1:
            return Changed(have)
    return image


def scale_keypoints(kps: np.ndarray, src_hw: Tuple[int, int], dst_hw: Tuple[int, int]) -> np.ndarray:
    """(16, >=2) pixel coordinates of a ``src_hw`` image -> those of the same image resized to ``dst_hw``."""
    out = np.array(kps, dtype=np.float32, copy=True)
    out[:, 0] = (out[:, 0] + 0.5) * (dst_hw[1] / src_hw[1]) - 0.5
    out[:, 1] = (out[:, 1] + 0.5) * (dst_hw[0] / src_hw[0]) - 0.5
    return out


def shard_plan(num_records: int, shard_size: int) -> List[Tuple[int, int]]:
    """``[(start, stop), ...]`` record ranges of each shard."""
    return [(s, min(s + shard_size, num_records)) for s in range(0, num_records, shard_size)]


def _decode_batch(root: Path, records: Sequence[Record], jobs: int) -> List["np.ndarray | str | Changed"]:
    if jobs <= 1:
        return [read_image(root / r.path, r.sha1) for r in records]
    # OpenCV decodes without the GIL: threads parallelise it without pickling images.
    return Parallel(n_jobs=jobs, prefer="threads")(delayed(read_image)(root / r.path, r.sha1) for r in records)


class HeatmapJob:
    """Build (or resume) the cache of ``manifest`` at ``out`` with ``estimator``."""

    def __init__(self, manifest: Manifest, root: Path, out: Path, estimator: PoseEstimator,
                 config: CacheConfig = CacheConfig(), jobs: int = 2, on_error: str = "fail",
                 part: Tuple[int, int] = (0, 1), progress: bool = False):
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        k, n = part
        if not (n >= 1 and 0 <= k < n):
            raise ValueError(f"part {k}/{n}: need 0 <= k < n")
        self.manifest, self.root, self.out = manifest, Path(root), Path(out)
        self.estimator, self.config, self.jobs = estimator, config, jobs
        self.on_error, self.part, self.progress = on_error, part, progress
        self.records = manifest.records          # sorted by path
        self.attrs = cache_attributes(config, estimator.describe(), manifest.hash, manifest.dataset,
                                      len(self.records))
        self.plan = shard_plan(len(self.records), config.shard_size)

    # ------------------------------------------------------------------ set-up
    def check_or_write_cache_json(self) -> None:
        path = self.out / "cache.json"
        if path.is_file():
            existing = json.loads(path.read_text())
            diffs = compare_attributes(existing, self.attrs)
            if diffs:
                raise CacheError(f"{self.out} holds a cache built with other settings; use another --out or "
                                 f"remove it:\n  " + "\n  ".join(diffs))
        else:
            atomic_write_json(path, self.attrs)
        manifest_path = self.out / "manifest.json"
        if not manifest_path.is_file():
            self.manifest.save(manifest_path)

    def _shard_done(self, index: int) -> bool:
        path = self.out / shard_name(index)
        if not path.is_file():
            return False
        try:
            info = read_shard_attrs(path)
        except (OSError, KeyError, ValueError) as exc:
            raise CacheError(f"{path}: unreadable shard ({exc}); rerun with --repair to rebuild it") from exc
        start, stop = self.plan[index]
        if info["attrs"] != self.attrs or info["rows"] + len(info["skipped"]) != stop - start:
            raise CacheError(f"{path}: shard does not belong to this cache (other attributes or size); "
                             f"delete it and rerun")
        return True

    # ------------------------------------------------------------------ work
    def _render(self, kps: np.ndarray, src_hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Estimator rows (16, 3) in source pixels -> (uint8 maps, confidence, keypoints in input pixels)."""
        conf = np.nan_to_num(kps[:, 2], nan=0.0).clip(0.0, 1.0).astype(np.float32)
        xy = scale_keypoints(kps[:, :2], src_hw, self.config.input_size)
        missing = (conf <= 0) | ~np.isfinite(xy).all(axis=1)
        xy[missing] = np.nan
        conf[missing] = 0.0
        maps, _ = self.config.codec.encode(xy, (~missing).astype(np.float32))
        return quantize_heatmaps(maps), conf, xy

    def compute_rows(self, index: int, bar: Any = None, only: Optional[Set[int]] = None
                     ) -> Tuple[Dict[int, Row], Dict[int, Dict[str, str]]]:
        """Rows of shard ``index`` by position in the shard's records: ``(rows, skipped)``.

        ``only``: positions wanted (repair); the estimator still sees each batch that holds
        one of them whole, exactly as the build did, so a recomputed row equals the built one
        (``--batch-size`` must be the build's), and the other batches are not touched."""
        start, stop = self.plan[index]
        records = self.records[start:stop]
        batch = max(1, int(getattr(self.estimator, "batch_size", 32)))
        batches = [list(range(i, min(i + batch, len(records)))) for i in range(0, len(records), batch)]
        if only is not None:
            batches = [b for b in batches if only.intersection(b)]
        rows: Dict[int, Row] = {}
        skipped: Dict[int, Dict[str, str]] = {}
        with ThreadPoolExecutor(max_workers=1) as prefetch:
            pending: Optional[Future] = None
            if batches:
                pending = prefetch.submit(_decode_batch, self.root, [records[i] for i in batches[0]], self.jobs)
            for b, idx in enumerate(batches):
                decoded = pending.result()
                if b + 1 < len(batches):   # decode the next batch while the estimator runs
                    pending = prefetch.submit(_decode_batch, self.root, [records[i] for i in batches[b + 1]], self.jobs)
                good = []
                for i, img in zip(idx, decoded):
                    if isinstance(img, Changed):
                        rec = records[i]
                        raise JobError(f"{self.root / rec.path}: content differs from the manifest (sha1 "
                                       f"{img.sha1[:12]}, the manifest has {rec.sha1[:12]}): the file changed after "
                                       f"the manifest was made; make a new manifest (`vireid-prep manifest`) and "
                                       f"cache")
                    if isinstance(img, str):
                        rec = records[i]
                        if self.on_error == "fail":
                            raise JobError(f"{self.root / rec.path}: {img} (pass --on-error skip to skip and "
                                           f"record such images)")
                        skipped[i] = {"path": rec.path, "reason": img}
                        log.warning("skipping %s: %s", self.root / rec.path, img)
                    else:
                        good.append((i, img))
                if good:
                    est = np.asarray(self.estimator.estimate([g[1] for g in good], [records[g[0]].path for g in good]),
                                     dtype=np.float32)
                    if est.shape != (len(good), NUM_JOINTS, 3):
                        raise JobError(f"estimator {self.estimator.name} returned shape {est.shape}, "
                                       f"expected {(len(good), NUM_JOINTS, 3)}")
                    for (i, img), kps in zip(good, est):
                        rec = records[i]
                        maps, conf, xy = self._render(kps, img.shape[:2])
                        h, w = self.config.input_size
                        resized = resize_crop(img, (h, w))
                        rows[i] = Row(image=encode_image(resized, self.config), heatmaps=maps, confidence=conf,
                                      keypoints=xy, pid=rec.pid, camid=rec.camid,
                                      modality=MODALITY_CODES[rec.modality], record=start + i, path=rec.path)
                if bar is not None:
                    bar.update(len(idx))
        return rows, skipped

    def process_shard(self, index: int, bar: Any = None) -> Tuple[ShardRows, List[Dict[str, str]]]:
        """Every row of shard ``index`` as the build writes it, and the images it skipped."""
        rows, skipped = self.compute_rows(index, bar)
        out = ShardRows()
        for i in sorted(rows):
            out.append(rows[i])
        return out, [skipped[i] for i in sorted(skipped)]

    def run(self) -> JobResult:
        from tqdm.auto import tqdm

        result = JobResult()
        k, n = self.part
        mine = [s for s in range(len(self.plan)) if s % n == k]
        t0 = time.perf_counter()
        with cache_lock(self.out, self.part):
            own = [shard_name(s) for s in mine]
            if n == 1:
                own += ["cache.json", "manifest.json", "index.json", "skipped.json"]
            for p in remove_stale_temporaries(self.out, own):
                log.info("removed %s, left by an interrupted run", p)
            self.check_or_write_cache_json()
            todo = [s for s in mine if not self._shard_done(s)]
            result.shards_skipped = len(mine) - len(todo)
            if result.shards_skipped:
                log.info("%s: %d shard(s) already complete, resuming", self.out, result.shards_skipped)
            total = sum(self.plan[s][1] - self.plan[s][0] for s in todo)
            bar = tqdm(total=total, desc=f"heatmaps ({self.estimator.name})", unit="img", disable=not self.progress)
            try:
                with ThreadPoolExecutor(max_workers=1) as writer:
                    writing: Optional[Future] = None
                    for s in todo:
                        rows, skipped = self.process_shard(s, bar)
                        if writing is not None:
                            writing.result()
                        writing = writer.submit(write_shard, self.out / shard_name(s), rows, self.attrs, s, skipped)
                        result.shards_written += 1
                        result.images += len(rows)
                        result.images_skipped += len(skipped)
                        result.skipped.extend(skipped)
                        elapsed = time.perf_counter() - t0
                        bar.set_postfix_str(f"{result.images / max(elapsed, 1e-9):.1f} img/s")
                    if writing is not None:
                        writing.result()
            finally:
                bar.close()
        if k == 0 and self.manifest.skipped:           # left out by the scan: counted once, by part 0
            result.images_skipped += len(self.manifest.skipped)
            result.skipped = list(self.manifest.skipped) + result.skipped
        result.seconds = time.perf_counter() - t0
        shards = [shard_name(s) for s in range(len(self.plan))]
        if all((self.out / s).is_file() for s in shards):
            write_index(self.out, shards, self.manifest.skipped)
            result.complete = True
        return result
