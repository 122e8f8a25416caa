"""File helpers: safe writes (to a temporary name beside the target, fsync, then rename)
and the sha256 of a file.

A killed process leaves either the old file or the new one under the final name, never
a half-written one; the temporary ``.<name>.tmp-*`` file it may leave is removed by the
next run of the same job (:func:`remove_stale_temporaries`). A write that fails (disk
full, folder not writable) raises :class:`WriteError`, one line naming the file, and
leaves the old file as it was. :func:`ensure_writable` checks an output folder before a
command starts its work.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

#: what atomic_path puts between the target's name and its random part
TEMP_MARK = ".tmp-"


class WriteError(OSError):
    """A file or folder cannot be written; the message is one line naming it."""

    def __init__(self, message: str, errno_: int | None = None):
        super().__init__(message)
        self.errno = errno_

    def __str__(self) -> str:
        return str(self.args[0])


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def write_error(target: PathLike, exc: OSError, what: str = "cannot write") -> WriteError:
    """A one-line :class:`WriteError` for ``exc`` raised while writing ``target``."""
    if isinstance(exc, WriteError):
        return exc
    return WriteError(f"{target}: {what}: {_reason(exc)}", exc.errno)


def previous_path(target: PathLike) -> Path:
    """Where :func:`atomic_path` with ``keep_previous`` keeps the file it replaced:
    ``last.pt`` -> ``last.prev.pt``."""
    target = Path(target)
    return target.with_name(f"{target.stem}.prev{target.suffix}")


@contextmanager
def atomic_path(target: PathLike, suffix: str = "", keep_previous: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is renamed onto ``target``.

    For writers that need a path (h5py, torch.save, matplotlib). On an exception the
    temporary file is removed and ``target`` is left untouched; an ``OSError`` (disk full,
    permission denied) becomes a :class:`WriteError` naming ``target``. With
    ``keep_previous`` the file it replaces is kept as :func:`previous_path`, renamed only
    once the new one is completely written (a crash between the two renames leaves the
    previous file and no ``target``: readers fall back to it).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}{TEMP_MARK}", suffix=suffix, dir=target.parent)
    except OSError as exc:
        raise write_error(target, exc) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp_path, 0o666 & ~umask)   # mkstemp makes 0600; give the file the usual permissions
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        if keep_previous and target.is_file():
            os.replace(target, previous_path(target))
        os.replace(tmp_path, target)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise write_error(target, exc) from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(target: PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: PathLike, payload: Any, indent: int = 2) -> None:
    atomic_write_text(target, json.dumps(payload, indent=indent, sort_keys=False, allow_nan=False) + "\n")


def remove_stale_temporaries(folder: PathLike, targets: Iterable[str]) -> List[Path]:
    """Delete the temporary files that :func:`atomic_path` left in ``folder`` for the file
    names ``targets`` (a killed writer's ``.<name>.tmp-*``); returns what was removed.

    Call it only while no other process may be writing those targets (under the job's lock)."""
    folder = Path(folder)
    names = set(targets)
    removed: List[Path] = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        name = p.name
        if not (name.startswith(".") and TEMP_MARK in name and p.is_file()):
            continue
        if name[1:name.index(TEMP_MARK)] in names:
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def ensure_writable(folder: PathLike, what: str = "output folder") -> Path:
    """Check, before any work, that files can be created in ``folder`` (or, when it does not
    exist yet, that it can be created): a real probe file, so read-only mounts, ACLs and
    quotas count too. Raises :class:`WriteError` naming the folder; creates nothing."""
    folder = Path(folder)
    probe_in = folder
    while not probe_in.exists():
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if probe_in.exists() and not probe_in.is_dir():
        raise WriteError(f"{folder}: {what} cannot be created: {probe_in} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".vireid-write-test-", dir=probe_in)
    except OSError as exc:
        where = "" if probe_in == folder else f" (it would be created in {probe_in})"
        raise WriteError(f"{folder}: {what} is not writable{where}: {_reason(exc)}", exc.errno) from None
    os.close(fd)
    os.unlink(probe)
    return folder


def file_sha256(path: PathLike, nbytes: Optional[int] = None) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks): how weights, checkpoints and
    images are identified in caches and results. ``nbytes``: only the first ``nbytes``
    (fewer if the file is shorter; :mod:`vireid.sealing` hashes what precedes its seal)."""
    h = hashlib.sha256()
    left = 0 if nbytes is None else int(nbytes)
    with open(path, "rb") as fh:
        while nbytes is None or left > 0:
            block = fh.read(1 << 20 if nbytes is None else min(1 << 20, left))
            if not block:
                break
            h.update(block)
            left -= len(block)
    return h.hexdigest()
