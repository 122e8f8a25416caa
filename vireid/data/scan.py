"""Scanning: a dataset root on disk -> a :class:`~vireid.data.manifest.Manifest`.

Each dataset's scanner lives in its reader (``vireid/data/readers/<name>.py``, found
through :mod:`vireid.data.registry`), the one parser of its list formats; what they
check with (the problem report, image inspection, expected sizes) is
:mod:`vireid.data.scan_checks`.

Each scanner checks the root against the dataset's declared layout and sizes
(``vireid/data/manifests/<name>.yaml``) and collects *every* problem before failing, each
with the path (and line) at fault: missing or extra folders, unreadable or zero-byte
images, ids listed without images, malformed list lines, counts that differ from the
declared ones. With ``allow_partial=True`` a partial or custom copy is accepted: count
and coverage problems become warnings recorded in the manifest (never silently);
corrupt images and malformed lists stay errors, unless ``skip_unreadable=True``
(``vireid-prep heatmaps --on-error skip``): an unreadable or zero-byte image is then left
out and listed with its reason in ``manifest.skipped`` (and so in the cache's
``skipped.json``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from vireid.data import registry
from vireid.data.manifest import Manifest
from vireid.data.scan_checks import Collector, Problem, ScanError, expected_sizes
from vireid.data.spec import DatasetSpec

log = logging.getLogger(__name__)


def scan(dataset: str, root: "str | Path", *, allow_partial: bool = False, jobs: int = 1,
         progress: bool = False, spec: Optional[DatasetSpec] = None, skip_unreadable: bool = False) -> Manifest:
    """Scan ``root`` as ``dataset`` (a registered name: :func:`vireid.data.registry.names`) into a manifest.

    Raises :class:`ScanError` listing every problem; with ``allow_partial`` count and
    coverage problems are kept as ``manifest.warnings`` instead. ``spec`` overrides the
    declared specification (tests; custom copies). ``skip_unreadable`` leaves unreadable
    images out and lists them in ``manifest.skipped`` instead of failing. An unknown
    dataset is a ``ValueError`` (:class:`vireid.data.registry.UnknownDataset`).
    """
    reader = registry.get(dataset)
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ScanError(root, [Problem("missing-root", str(root), "dataset root is not a directory")])
    spec = expected_sizes(root, spec or reader.spec())
    col = Collector(allow_partial, skip_unreadable)
    manifest = reader.scan(root, spec, col, jobs, progress)
    for w in manifest.warnings:
        log.warning("%s", w)
    return manifest
