"""Atomic writes: nothing under the final name until complete, usual permissions."""
from __future__ import annotations

import os

import pytest

from vireid.io import atomic_path, atomic_write_text


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_permissions_follow_the_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o644


def test_file_sha256_whole_file_and_prefix(tmp_path):
    import hashlib

    from vireid.io import file_sha256

    path = tmp_path / "b.bin"
    data = bytes(range(256)) * 9000                     # 2.2 MiB: more than one read block
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(path, (1 << 20) + 7) == hashlib.sha256(data[:(1 << 20) + 7]).hexdigest()
    assert file_sha256(path, 0) == hashlib.sha256(b"").hexdigest()
    assert file_sha256(path, len(data) + 100) == file_sha256(path)   # a short file: what is there
