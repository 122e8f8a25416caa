"""Repairing a heatmap cache: recompute only what is damaged or missing; add row checksums.

``vireid-prep heatmaps --repair`` (:func:`repair_cache`) runs :func:`pipeline.verify.inspect_cache`
and then, shard by shard (each rewritten atomically, under the job's lock):

* a shard that is missing, cannot be opened or lost rows is built again from its images;
* a readable shard with damaged rows (checksum mismatch, metadata that differ from the
  manifest, unreadable chunks) keeps its sound rows as stored and gets the damaged ones
  recomputed: the estimator sees the build's batches holding them, so every row comes
  out as the build made it, and the shard file byte for byte as an uninterrupted build
  wrote it (with the build's ``--batch-size``);
* a shard written before row checksums gets them, from its stored rows (no heatmap
  recomputed);

then writes ``index.json`` and ``skipped.json`` again and verifies the result.

``vireid-prep checksum`` (:func:`add_checksums`) does only the last step, without a dataset
root or an estimator: for caches written before the checksums existed.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Set, Tuple

from pipeline.heatmaps import HeatmapJob, cache_lock
from pipeline.verify import CacheReport, inspect_cache
from vireid.data.manifest import Manifest, ManifestError
from vireid.cache.writer import ShardRows, read_shard_attrs, read_shard_rows, write_index, write_shard
from vireid.cache.reader import CacheError, shard_name
from vireid.io import atomic_write_json, remove_stale_temporaries

log = logging.getLogger(__name__)


@dataclass
class RepairResult:
    """What a repair did, and what verify says afterwards."""

    rows_recomputed: int = 0                 # damaged rows of patched shards
    rows_rebuilt: int = 0                    # rows of shards built again
    shards_rebuilt: List[int] = field(default_factory=list)
    shards_patched: List[int] = field(default_factory=list)
    shards_checksummed: List[int] = field(default_factory=list)
    after: CacheReport = field(default_factory=CacheReport)

    def summary(self) -> str:
        return (f"{self.rows_recomputed} damaged row(s) recomputed in {len(self.shards_patched)} shard(s), "
                f"{len(self.shards_rebuilt)} shard(s) rebuilt ({self.rows_rebuilt} rows), checksums added to "
                f"{len(self.shards_checksummed)} shard(s)")


def _positions(job: HeatmapJob, s: int, skipped: List[Dict[str, str]]) -> List[int]:
    """Row r of shard ``s`` -> position of its record in the shard's part of the manifest."""
    start, stop = job.plan[s]
    gone = {d["path"] for d in skipped}
    return [i for i in range(stop - start) if job.records[start + i].path not in gone]


def _patch(job: HeatmapJob, s: int, path: Path, bad_rows: Set[int]) -> Tuple[ShardRows, List[Dict[str, str]], int]:
    """The shard's stored rows with ``bad_rows`` recomputed (none: only checksums added)."""
    stored, skipped = read_shard_rows(path)
    positions = _positions(job, s, skipped)
    if len(positions) != len(stored):
        raise ValueError(f"holds {len(stored)} rows, its records {len(positions)}")
    wanted = {positions[r] for r in bad_rows}
    fresh, fresh_skipped = job.compute_rows(s, only=wanted) if wanted else ({}, {})
    rows = ShardRows()
    for r, row in enumerate(stored):
        p = positions[r]
        if p in wanted:
            if p in fresh_skipped:     # unreadable now: leave it out, as a build would
                skipped.append(fresh_skipped[p])
                continue
            row = fresh[p]
        rows.append(row)
    skipped.sort(key=lambda d: d["path"])
    return rows, skipped, len(wanted)


def _check_cache_json(job: HeatmapJob) -> None:
    """A readable cache.json must hold this job's settings; an unreadable one is rewritten."""
    path = job.out / "cache.json"
    try:
        json.loads(path.read_text())
    except FileNotFoundError:
        raise CacheError(f"{job.out}: not a heatmap cache (no cache.json): build it without --repair") from None
    except (OSError, ValueError) as exc:
        log.warning("%s is damaged (%s): written again from this job's settings", path, exc)
        atomic_write_json(path, job.attrs)
    job.check_or_write_cache_json()


def repair_cache(job: HeatmapJob) -> RepairResult:
    """Recompute the damaged or missing rows of ``job``'s cache (see the module docstring)."""
    result = RepairResult()
    k, n = job.part
    mine = [s for s in range(len(job.plan)) if s % n == k]
    with cache_lock(job.out, job.part):
        remove_stale_temporaries(job.out, [shard_name(s) for s in mine] +
                                 (["cache.json", "index.json", "skipped.json"] if n == 1 else []))
        _check_cache_json(job)
        report = inspect_cache(job.out, manifest=job.manifest)
        bad_shards = set(report.bad_shards)
        for s in mine:
            path = job.out / shard_name(s)
            rebuild = s in bad_shards or not path.is_file()
            bad = set(report.bad_rows.get(s, []))
            if not rebuild and not bad and s not in report.unchecked_shards:
                continue
            if not rebuild:
                try:
                    rows, skipped, recomputed = _patch(job, s, path, bad)
                except (OSError, KeyError, ValueError) as exc:
                    log.warning("%s cannot be patched (%s): built again", path, exc)
                    rebuild = True
            if rebuild:
                rows, skipped = job.process_shard(s)
                result.shards_rebuilt.append(s)
                result.rows_rebuilt += len(rows)
            elif bad:
                result.shards_patched.append(s)
                result.rows_recomputed += recomputed
            else:
                result.shards_checksummed.append(s)
            write_shard(path, rows, job.attrs, s, skipped)
            log.info("%s: %s", path, "rebuilt" if rebuild else f"{recomputed} row(s) recomputed" if bad
                     else "checksums added")
    shards = [shard_name(s) for s in range(len(job.plan))]
    if all((job.out / s).is_file() for s in shards):
        write_index(job.out, shards, job.manifest.skipped)
    result.after = inspect_cache(job.out, manifest=job.manifest)
    return result


def add_checksums(root: Path) -> Tuple[List[str], List[str]]:
    """Give every shard of the cache at ``root`` its row checksums, from the rows as stored
    (nothing recomputed); returns (shards given checksums, shards that had them)."""
    root = Path(root)
    if not (root / "cache.json").is_file():
        raise CacheError(f"{root}: not a heatmap cache (no cache.json)")
    try:
        scan_skipped = Manifest.load(root / "manifest.json", verify_hash=False).skipped
    except ManifestError:
        scan_skipped = []
    added, had = [], []
    with cache_lock(root, (0, 1)):
        shards = sorted(p.name for p in root.glob("shard-*.h5"))
        remove_stale_temporaries(root, shards + ["index.json", "skipped.json"])
        for name in shards:
            path = root / name
            try:
                info = read_shard_attrs(path)
                if info["row_checksum"]:
                    had.append(name)
                    continue
                stored, skipped = read_shard_rows(path)
            except (OSError, KeyError, ValueError) as exc:
                raise CacheError(f"{path}: cannot be read ({exc}): `vireid-prep verify {root}` says more, "
                                 f"`vireid-prep heatmaps --repair` rebuilds it") from None
            rows = ShardRows()
            for row in stored:
                rows.append(row)
            write_shard(path, rows, info["attrs"], info["shard_index"], skipped)
            added.append(name)
        if added and (root / "index.json").is_file():
            index = json.loads((root / "index.json").read_text())
            write_index(root, index["shards"], scan_skipped)
    return added, had

