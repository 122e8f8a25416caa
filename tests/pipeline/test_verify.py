"""``vireid-prep verify``: what it finds in a damaged cache and how it names it."""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.verify import inspect_cache
from tests.fs import flip_byte, row_offset
from tests.pipeline.test_heatmaps import build, dataset  # noqa: F401 - the tree fixture


@pytest.fixture()
def cache(dataset, tmp_path):  # noqa: F811
    root, manifest = dataset
    build(root, manifest, tmp_path / "c")
    return tmp_path / "c", manifest


def test_flipped_identity_is_found(cache):
    """Drill: 2 flipped bytes in a raw shard's pid data changed an identity; verify said OK."""
    out, manifest = cache
    shard = out / "shard-00001.h5"
    with h5py.File(shard, "r") as f:
        pids = f["pid"][()]
        paths = list(f["path"].asstr()[()])
    row = int(np.flatnonzero(pids % 2 == 0)[0])        # an even identity: flipping bit 0 adds 1
    offset, _ = row_offset(shard, "pid", row)
    flip_byte(shard, offset, 0x01)
    flip_byte(shard, offset + 3, 0x00)                  # the second byte touched, unchanged
    problems = inspect_cache(out).problems
    hit = [p for p in problems if f"row {row}" in p and paths[row] in p]
    assert hit, problems
    assert f"identity {pids[row] + 1} in the cache, {pids[row]} in the manifest" in hit[0]
    assert str(shard) in hit[0]
    res = CliRunner().invoke(cli, ["verify", str(out)])
    assert res.exit_code == 1 and paths[row] in res.output


@pytest.mark.parametrize("field,dataset_name,mask,expect", [
    ("camera", "camid", 0x02, "camera"),
    ("modality", "modality", 0x01, "modality"),
])
def test_flipped_camera_and_modality_are_found(cache, field, dataset_name, mask, expect):
    out, _ = cache
    shard = out / "shard-00002.h5"
    offset, _ = row_offset(shard, dataset_name, 4)
    flip_byte(shard, offset, mask)
    problems = inspect_cache(out).problems
    assert any("row 4" in p and expect in p for p in problems), problems


def test_damaged_shard_is_named_with_the_images_it_holds(cache):
    """Drill: a corrupt shard was reported as 'N manifest image(s) absent from the cache'."""
    out, manifest = cache
    shard = out / "shard-00002.h5"
    data = bytearray(shard.read_bytes())
    data[:8] = b"garbage!"                               # the HDF5 signature: unopenable
    shard.write_bytes(bytes(data))
    problems = inspect_cache(out).problems
    assert not any("absent from the cache" in p for p in problems), problems
    first, last = manifest.records[20].path, manifest.records[29].path
    hit = [p for p in problems if "shard-00002.h5" in p and "damaged" in p]
    assert len(hit) == 1, problems
    assert "holds 10 image(s)" in hit[0] and first in hit[0] and last in hit[0]
    assert "vireid-prep heatmaps" in hit[0]


def test_missing_shard_is_named_with_the_images_it_should_hold(cache):
    out, manifest = cache
    (out / "shard-00003.h5").unlink()
    problems = inspect_cache(out).problems
    assert not any("absent from the cache" in p for p in problems), problems
    hit = [p for p in problems if "shard-00003.h5" in p]
    assert hit and "missing" in hit[0] and "10 image(s)" in hit[0] and manifest.records[30].path in hit[0]


def test_truly_absent_images_are_still_counted(cache, tmp_path):
    """An image of the manifest that no shard is meant to hold (the cache lost a row)."""
    out, manifest = cache
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shard = copy / "shard-00000.h5"
    with h5py.File(shard, "a") as f:                    # rewrite shard 0 without its last row
        for key in list(f):
            data = f[key][()][:-1]
            dtype = f[key].dtype
            del f[key]
            f.create_dataset(key, data=data, dtype=dtype)
        f.attrs["rows"] = int(f.attrs["rows"]) - 1
    problems = inspect_cache(copy).problems
    assert any("absent from the cache" in p and manifest.records[9].path in p for p in problems), problems
