"""What every dataset scanner (:mod:`vireid.data.scan`) checks with.

* the problem report: each issue a :class:`Problem` with the path (and line) at fault,
  gathered by a :class:`Collector` so a scan lists *every* problem before failing
  (:class:`ScanError`); ``soft`` problems (counts, coverage) become warnings recorded in
  the manifest under ``allow_partial``, and with ``skip_unreadable`` an unreadable image
  is left out and listed in ``manifest.skipped``;
* image inspection: every image is decoded once, its size, byte count and sha1 recorded
  (:func:`inspect_images`, in parallel) to make the manifest's records;
* the expected sizes: the dataset's declared ones, or those a synthetic tree written by
  ``vireid-prep synth`` carries in :data:`SYNTH_MARKER` (:func:`expected_sizes`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
from joblib import Parallel, delayed

from vireid.data.images import load_image
from vireid.data.manifest import Record
from vireid.data.spec import DatasetSpec

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    kind: str          # e.g. 'missing-folder', 'corrupt-image', 'count-mismatch'
    path: str          # the file or folder at fault
    detail: str
    line: Optional[int] = None
    fatal: bool = True

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.kind}: {self.detail}"


class ScanError(Exception):
    """The dataset root does not match its declared layout; ``problems`` lists every issue."""

    def __init__(self, root: Path, problems: Sequence[Problem]):
        self.root = root
        self.problems = list(problems)
        fatal = [p for p in self.problems if p.fatal]
        super().__init__(f"{root}: {len(fatal)} problem(s) found:\n" + "\n".join(f"  {p}" for p in fatal))


class Collector:
    """Gathers problems; ``soft`` ones become warnings under ``allow_partial``."""

    def __init__(self, allow_partial: bool, skip_unreadable: bool = False):
        self.allow_partial = allow_partial
        self.skip_unreadable = skip_unreadable
        self.problems: List[Problem] = []
        self.skipped: List[Dict[str, str]] = []     # unreadable images left out (skip_unreadable)

    def hard(self, kind: str, path: object, detail: str, line: Optional[int] = None) -> None:
        self.problems.append(Problem(kind, str(path), detail, line, fatal=True))

    def soft(self, kind: str, path: object, detail: str, line: Optional[int] = None) -> None:
        self.problems.append(Problem(kind, str(path), detail, line, fatal=not self.allow_partial))

    def note(self, kind: str, path: object, detail: str) -> None:
        self.problems.append(Problem(kind, str(path), detail, None, fatal=False))

    def raise_if_fatal(self, root: Path) -> None:
        if any(p.fatal for p in self.problems):
            raise ScanError(root, self.problems)

    @property
    def warnings(self) -> List[str]:
        return [str(p) for p in self.problems if not p.fatal]


# --------------------------------------------------------------------------- images
ImageInfo = Tuple[int, int, int, str]   # height, width, nbytes, sha1


def inspect_image(path: Path) -> "ImageInfo | str":
    """Read and decode one image; return ``(h, w, nbytes, sha1)`` or the reason it is unusable."""
    loaded = load_image(path, cv2.IMREAD_UNCHANGED)
    if isinstance(loaded, str):
        return loaded
    image, data = loaded
    return int(image.shape[0]), int(image.shape[1]), len(data), hashlib.sha1(data).hexdigest()


def _inspect_chunk(paths: Sequence[Path]) -> List["ImageInfo | str"]:
    return [inspect_image(p) for p in paths]


def inspect_images(paths: Sequence[Path], jobs: int = 1, progress: bool = False,
                   chunk: int = 256) -> List["ImageInfo | str"]:
    """:func:`inspect_image` over many files, in parallel with joblib, with a progress bar."""
    chunks = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    from tqdm.auto import tqdm
    bar = tqdm(total=len(paths), desc="checking images", unit="img", disable=not progress)
    out: List["ImageInfo | str"] = []
    try:
        if jobs == 1 or len(chunks) <= 1:
            for c in chunks:
                out.extend(_inspect_chunk(c))
                bar.update(len(c))
        else:
            for res in Parallel(n_jobs=jobs, return_as="generator")(delayed(_inspect_chunk)(c) for c in chunks):
                out.extend(res)
                bar.update(len(res))
    finally:
        bar.close()
    return out


def list_dir(path: Path) -> List[Path]:
    """The entries of a folder, sorted by name (scans walk folders in this order)."""
    return sorted(path.iterdir(), key=lambda p: p.name)


def records_from_images(root: Path, found: List[Tuple[str, dict]], col: Collector, jobs: int,
                        progress: bool) -> List[Record]:
    """Records of the images ``found`` (``(path relative to root, record fields)``), each
    inspected; an unusable one is a hard problem, or left out under ``skip_unreadable``."""
    infos = inspect_images([root / rel for rel, _ in found], jobs=jobs, progress=progress)
    records = []
    for (rel, fields), info in zip(found, infos):
        if isinstance(info, str):
            if col.skip_unreadable:
                col.skipped.append({"path": rel, "reason": info})
                col.note("skipped-image", root / rel, f"{info}: left out (--on-error skip)")
            else:
                col.hard("corrupt-image", root / rel, info)
            continue
        h, w, nbytes, sha1 = info
        records.append(Record(path=rel, height=h, width=w, nbytes=nbytes, sha1=sha1, **fields))
    return records


def check_count(col: Collector, root: Path, what: str, actual: int, expected: Optional[int]) -> None:
    """A soft ``count-mismatch`` problem unless ``actual`` is the ``expected`` count (None: not declared)."""
    if expected is not None and actual != int(expected):
        col.soft("count-mismatch", root, f"{what}: found {actual}, the dataset has {expected}")


# --------------------------------------------------------------------------- synthetic data
SYNTH_MARKER = "vireid_synth.json"


def expected_sizes(root: Path, spec: DatasetSpec) -> DatasetSpec:
    """The spec whose ``expected`` sizes apply to ``root``.

    A data set written by ``vireid-prep synth`` carries its own sizes in
    ``vireid_synth.json`` (same keys as the YAML's ``expected``); they replace the real
    dataset's, so a synthetic tree is checked as strictly as a real one.
    """
    marker = root / SYNTH_MARKER
    if not marker.is_file():
        return spec
    try:
        doc = json.loads(marker.read_text())
        expected = doc["expected"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScanError(root, [Problem("malformed-file", str(marker), f"unreadable synthetic-data marker: {exc}")])
    if doc.get("layout") != spec.name:
        raise ScanError(root, [Problem("wrong-layout", str(marker),
                                       f"synthetic data of layout {doc.get('layout')!r}, not {spec.name!r}")])
    log.info("%s: synthetic %s data set, sizes checked against %s", root, spec.name, marker.name)
    return dataclasses.replace(spec, expected=expected)
