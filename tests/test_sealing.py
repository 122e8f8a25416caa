"""Sealed checkpoints: every truncation and flipped byte is refused with one line, or changes
nothing that is loaded; unsealed files load as before; the previous file is kept."""
from __future__ import annotations

import pytest
import torch

from tests.fs import disk_full, flip_byte, snapshot
from vireid.io import WriteError, previous_path
from vireid.sealing import DamagedFileError, check_seal, torch_load, torch_save


def _payload(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return {"model": {"w": torch.randn(64, 32, generator=g), "b": torch.arange(7)}, "epoch": 3 + seed,
            "config": {"lr": 0.01, "name": "run"}}


def _same(a, b) -> bool:
    return (a["epoch"] == b["epoch"] and a["config"] == b["config"]
            and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]))


def test_sealed_file_loads_and_is_a_plain_torch_checkpoint(tmp_path):
    torch_save(_payload(), tmp_path / "c.pt")
    assert check_seal(tmp_path / "c.pt") is True
    assert _same(torch_load(tmp_path / "c.pt", weights_only=False), _payload())
    assert _same(torch.load(tmp_path / "c.pt", weights_only=False), _payload())     # any tool reads it


def test_every_flipped_byte_is_refused_or_harmless(tmp_path):
    path = tmp_path / "c.pt"
    torch_save(_payload(), path)
    size = path.stat().st_size
    refused = harmless = 0
    for offset in list(range(0, size, 37)) + [size - 1]:
        flip_byte(path, offset, 0x04)
        try:
            try:
                loaded = torch_load(path, weights_only=False)
            except DamagedFileError as exc:
                assert str(path) in str(exc) and "\n" not in str(exc)
                refused += 1
            else:
                assert _same(loaded, _payload()), f"offset {offset}: loaded changed content"
                harmless += 1
        finally:
            flip_byte(path, offset, 0x04)
    assert refused > 0.8 * (refused + harmless), (refused, harmless)


def test_every_truncation_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    torch_save(_payload(), path)
    data = path.read_bytes()
    for length in list(range(0, len(data), max(1, len(data) // 40))) + [len(data) - 1]:
        path.write_bytes(data[:length])
        with pytest.raises(DamagedFileError, match=str(path)) as err:
            torch_load(path, weights_only=False)
        assert "\n" not in str(err.value)


def test_unsealed_files_load_as_before(tmp_path):
    torch.save(_payload(), tmp_path / "old.pt")
    assert check_seal(tmp_path / "old.pt") is False
    assert _same(torch_load(tmp_path / "old.pt", weights_only=False), _payload())


def test_the_previous_file_is_kept_and_survives_a_failed_write(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    torch_save(_payload(0), path, keep_previous=True)
    assert not previous_path(path).exists()
    torch_save(_payload(1), path, keep_previous=True)
    assert _same(torch_load(previous_path(path), weights_only=False), _payload(0))
    assert _same(torch_load(path, weights_only=False), _payload(1))
    before = snapshot(tmp_path)
    failed = disk_full(monkeypatch)
    with pytest.raises(WriteError, match=f"{path}: cannot write: no space left on the device"):
        torch_save(_payload(2), path, keep_previous=True)
    assert failed and snapshot(tmp_path) == before                 # both kept, no temporary file left
