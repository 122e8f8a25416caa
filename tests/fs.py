"""File-system conditions for reliability tests: a read-only folder, a full disk, damaged bytes.

``read_only`` makes a folder really read-only for this process: ``chmod 0555``, and when
the tests run as root (whom permissions do not bind) root's CAP_DAC_OVERRIDE is dropped
for the block.
``disk_full`` makes every atomic write (:func:`vireid.io.atomic_path`) after the first
``after`` ones fail at its ``fsync`` with ``ENOSPC``, as a full disk does on filesystems
that allocate late (ext4 delayed allocation, NFS, XFS).
"""
from __future__ import annotations

import ctypes
import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Tuple

import h5py
import numpy as np
import pytest


def one_line(output: str) -> str:
    """The only non-empty line of a command's output (fails on a traceback or several lines)."""
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    assert "Traceback" not in output, output
    assert len(lines) == 1, f"expected one line, got {len(lines)}: {output!r}"
    return lines[0]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAP_V3 = 0x20080522
CAP_DAC_OVERRIDE = 1


def _set_dac_override(enabled: bool) -> bool:
    """Raise or lower CAP_DAC_OVERRIDE (root's right to write where permissions say no) in
    this thread's effective set; threads started inside inherit it. False if not possible."""
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(_CAP_V3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        return False
    if enabled:
        data[0].effective |= 1 << CAP_DAC_OVERRIDE
    else:
        data[0].effective &= ~(1 << CAP_DAC_OVERRIDE)
    return libc.capset(ctypes.byref(header), data) == 0


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` (created, mode 0555) cannot be written in the block, by a user or by root:
    root loses CAP_DAC_OVERRIDE for the block (it still reads everything it owns)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mode = folder.stat().st_mode & 0o7777
    os.chmod(folder, 0o555)
    as_root = os.geteuid() == 0
    try:
        if as_root and not _set_dac_override(False):
            pytest.skip("running as root without the right to drop CAP_DAC_OVERRIDE: cannot make a folder "
                        "read-only here")
        probe = folder / ".probe"
        try:
            probe.write_bytes(b"")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip(f"{folder} stays writable after chmod 0555 here")
        yield folder
    finally:
        if as_root:
            _set_dac_override(True)
        os.chmod(folder, mode)


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


def data_regions(shard: Path) -> dict:
    """Where each dataset's bytes lie in a shard file: ``name -> [(offset, length), ...]``, its
    storage (contiguous or chunks) and, for variable-length datasets, ``name:heap`` with the
    bytes of each element in the global heap (found by their content)."""
    blob = Path(shard).read_bytes()
    out: dict = {}
    with h5py.File(shard, "r") as f:
        for name, ds in f.items():
            if ds.chunks is None:
                out[name] = [(int(ds.id.get_offset()), int(ds.id.get_storage_size()))]
            else:
                infos = [ds.id.get_chunk_info(i) for i in range(ds.id.get_num_chunks())]
                out[name] = [(int(c.byte_offset), int(c.size)) for c in infos]
            if h5py.check_vlen_dtype(ds.dtype) is not None or h5py.check_string_dtype(ds.dtype) is not None:
                heap = []
                for r in range(ds.shape[0]):
                    value = ds[r]
                    content = value if isinstance(value, bytes) else np.asarray(value).tobytes()
                    at = blob.find(content)
                    assert at >= 0, f"{name}[{r}] not found in the file"
                    heap.append((at, len(content)))
                out[f"{name}:heap"] = heap
    return out


def spread(regions, per_region: int = 3) -> List[int]:
    """A few offsets in every region: its first byte, its last and some between."""
    offsets = []
    for start, length in regions:
        if length <= 0:
            continue
        picks = {0, length - 1, length // 2} | {length * k // (per_region + 1) for k in range(1, per_region + 1)}
        offsets += [start + p for p in sorted(picks)]
    return sorted(set(offsets))
