"""File-system conditions for reliability tests: a read-only folder, a full disk, damaged bytes.

``read_only`` makes a folder really read-only for this process: ``chmod 0555``, and when
the tests run as root (whom permissions do not bind) the effective uid and gid switch to
``nobody`` for the block, with the folders the command must read opened to it.
``disk_full`` makes every atomic write (:func:`vireid.io.atomic_path`) after the first
``after`` ones fail at its ``fsync`` with ``ENOSPC``, as a full disk does on filesystems
that allocate late (ext4 delayed allocation, NFS, XFS).
"""
from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

import h5py
import numpy as np

NOBODY = 65534


def one_line(output: str) -> str:
    """The only non-empty line of a command's output (fails on a traceback or several lines)."""
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    assert "Traceback" not in output, output
    assert len(lines) == 1, output
    return lines[0]


@contextmanager
def read_only(folder: Path, readable: Sequence[Path] = ()) -> Iterator[Path]:
    """``folder`` (created) cannot be written in the block; ``readable`` paths (and every
    folder above them and above ``folder``) stay readable when the block runs as nobody."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    changed: List[Tuple[Path, int]] = []
    as_root = os.geteuid() == 0

    def chmod(path: Path, mode: int) -> None:
        changed.append((path, path.stat().st_mode & 0o7777))
        os.chmod(path, mode)

    chmod(folder, 0o555)
    if as_root:
        seen = set()
        for p in [folder, *readable]:
            p = Path(p).resolve()
            targets = [p, *p.parents]
            if p.is_dir():           # the files of a readable folder: every sub-folder too
                targets += [d for d in p.rglob("*") if d.is_dir()]
            for d in targets:
                if d in seen or not d.exists():
                    continue
                seen.add(d)
                mode = d.stat().st_mode & 0o7777
                if d.is_dir() and mode & 0o005 != 0o005:
                    chmod(d, mode | 0o005)
    try:
        if as_root:
            os.setegid(NOBODY)
            os.seteuid(NOBODY)
        yield folder
    finally:
        if as_root:
            os.seteuid(0)
            os.setegid(0)
        for path, mode in reversed(changed):
            os.chmod(path, mode)


def disk_full(monkeypatch, after: int = 0) -> List[str]:
    """Let ``after`` atomic writes succeed, then fail every next one with ENOSPC at its fsync.
    Returns the list of files whose write failed (filled as they fail)."""
    import vireid.io

    real = os.fsync
    done = {"n": 0}
    failed: List[str] = []

    def fsync(fd: int) -> None:
        if done["n"] >= after:
            failed.append(os.readlink(f"/proc/self/fd/{fd}"))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done["n"] += 1
        real(fd)

    monkeypatch.setattr(vireid.io.os, "fsync", fsync)
    return failed


def snapshot(folder: Path) -> dict:
    """name -> bytes of every regular file below ``folder``."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ damaging shards
def flip_byte(path: Path, offset: int, mask: int = 0x01) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        value = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([value ^ mask]))


def row_offset(shard: Path, dataset: str, row: int) -> Tuple[int, int]:
    """(file offset, bytes) of row ``row`` of a contiguous dataset of a shard."""
    with h5py.File(shard, "r") as f:
        ds = f[dataset]
        assert ds.chunks is None, f"{dataset} is chunked"
        per_row = ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64))
        return int(ds.id.get_offset()) + row * per_row, per_row
