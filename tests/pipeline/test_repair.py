"""`vireid-prep heatmaps --repair` and `vireid-prep checksum`: damaged or missing rows recomputed,
the result byte-identical to an uninterrupted build; caches written before row checksums."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.verify import inspect_cache
from tests.fs import flip_byte, row_offset, snapshot
from tests.pipeline.test_heatmaps import dataset  # noqa: F401 - the tree fixture
from vireid.cache.reader import HeatmapCache


def _heatmaps(root: Path, out: Path, *extra: str):
    args = ["heatmaps", "--dataset", "sysu", "--root", str(root), "--out", str(out), "--estimator", "keypoints",
            "--input-size", "32x16", "--sigma", "2", "--shard-size", "8", "--batch-size", "3", "--no-progress",
            "--allow-partial", *extra]
    return CliRunner().invoke(cli, args)


@pytest.fixture()
def built(dataset, tmp_path):  # noqa: F811
    root, _ = dataset
    res = _heatmaps(root, tmp_path / "ref")
    assert res.exit_code == 0, res.output
    return root, tmp_path / "ref"


def _drop_last_row(shard: Path) -> None:
    with h5py.File(shard, "a") as f:
        for key in list(f):
            data, dtype = f[key][()][:-1], f[key].dtype
            del f[key]
            f.create_dataset(key, data=data, dtype=dtype)
        f.attrs["rows"] = int(f.attrs["rows"]) - 1


def test_repair_ends_byte_identical_to_an_uninterrupted_build(built, tmp_path):
    root, ref = built
    work = tmp_path / "work"
    shutil.copytree(ref, work)
    offset, length = row_offset(work / "shard-00001.h5", "heatmaps", 2)
    flip_byte(work / "shard-00001.h5", offset + length // 3, 0x20)          # a heatmap byte of one row
    offset, length = row_offset(work / "shard-00002.h5", "image", 5)
    flip_byte(work / "shard-00002.h5", offset + 7, 0x01)                     # a pixel of another
    offset, _ = row_offset(work / "shard-00003.h5", "pid", 0)
    flip_byte(work / "shard-00003.h5", offset, 0x02)                         # an identity
    (work / "shard-00004.h5").unlink()                                       # a lost shard
    with open(work / "shard-00005.h5", "r+b") as fh:                         # an unopenable one
        fh.write(b"\0" * 8)
    _drop_last_row(work / "shard-00000.h5")                                  # a shard missing a row
    (work / "index.json").write_text("{")                                   # a damaged index
    untouched = work / "shard-00006.h5"
    inode = untouched.stat().st_ino
    before = inspect_cache(work)
    assert before.bad_rows == {1: [2], 2: [5], 3: [0]} and sorted(before.bad_shards) == [0, 4, 5]
    res = _heatmaps(root, work, "--repair")
    assert res.exit_code == 0, res.output
    assert "3 damaged row(s) recomputed in 3 shard(s), 3 shard(s) rebuilt (24 rows), checksums added to 0 shard(s)" in res.output, res.output
    assert res.output.strip().endswith("OK")
    assert untouched.stat().st_ino == inode                                  # a sound shard is not rewritten
    a, b = snapshot(ref), snapshot(work)
    assert sorted(a) == sorted(b)
    for name in a:
        if name != ".lock":
            assert a[name] == b[name], f"{name} differs from the uninterrupted build"


def test_repair_recomputes_only_the_batches_of_damaged_rows(built, tmp_path, monkeypatch):
    from pipeline.estimators.keypoints import KeypointFileEstimator

    root, ref = built
    offset, length = row_offset(ref / "shard-00002.h5", "heatmaps", 4)
    flip_byte(ref / "shard-00002.h5", offset + 1, 0x01)
    seen = []
    real = KeypointFileEstimator.estimate

    def estimate(self, images, paths):
        seen.extend(paths)
        return real(self, images, paths)

    monkeypatch.setattr(KeypointFileEstimator, "estimate", estimate)
    res = _heatmaps(root, ref, "--repair")
    assert res.exit_code == 0, res.output
    with h5py.File(ref / "shard-00002.h5", "r") as f:
        paths = list(f["path"].asstr()[()])
    assert seen == paths[3:6]                   # --batch-size 3: the build's batch holding row 4, nothing else


def _strip_checksums(cache: Path) -> None:
    """Make ``cache`` as it was written before row checksums: no ``checksum`` dataset, no
    ``row_checksum`` attribute in the shards or in index.json."""
    for shard in sorted(cache.glob("shard-*.h5")):
        tmp = shard.with_suffix(".old")
        with h5py.File(shard, "r") as src, h5py.File(tmp, "w", track_order=True) as dst:
            for key in src:
                if key != "checksum":
                    src.copy(src[key], dst, name=key)
            for key, value in src.attrs.items():
                if key != "row_checksum":
                    dst.attrs[key] = value
        os.replace(tmp, shard)
    index = json.loads((cache / "index.json").read_text())
    del index["row_checksum"]
    (cache / "index.json").write_text(json.dumps(index))


def test_a_cache_without_checksums_is_read_and_checksums_are_added(built, tmp_path):
    root, ref = built
    old = tmp_path / "old"
    shutil.copytree(ref, old)
    _strip_checksums(old)
    new, legacy = HeatmapCache(ref), HeatmapCache(old)
    assert legacy.row_checksum is None
    for i in range(len(new)):
        for x, y in zip(new.read_arrays(i, quantized=True), legacy.read_arrays(i, quantized=True)):
            np.testing.assert_array_equal(x, y)
    assert legacy.unchecked_shards == set(range(len(legacy.shards)))
    res = CliRunner().invoke(cli, ["verify", str(old)])
    assert res.exit_code == 0, res.output
    assert "have no row checksums" in res.output and f"vireid-prep checksum {old}" in res.output
    assert "--repair" in res.output
    res = CliRunner().invoke(cli, ["checksum", str(old)])
    assert res.exit_code == 0, res.output
    assert "row checksums added to 7 shard(s) (0 had them); no heatmap recomputed" in res.output
    a, b = snapshot(ref), snapshot(old)
    for name in a:
        if name != ".lock":
            assert a[name] == b[name], f"{name} differs from a build with checksums"
    res = CliRunner().invoke(cli, ["verify", str(old)])
    assert res.exit_code == 0 and "no row checksums" not in res.output and res.output.strip().endswith("OK")


def test_repair_adds_checksums_to_an_old_cache(built, tmp_path):
    root, ref = built
    old = tmp_path / "old"
    shutil.copytree(ref, old)
    _strip_checksums(old)
    res = _heatmaps(root, old, "--repair")
    assert res.exit_code == 0, res.output
    assert "0 damaged row(s) recomputed in 0 shard(s), 0 shard(s) rebuilt (0 rows), checksums added to 7 shard(s)" in res.output
    a, b = snapshot(ref), snapshot(old)
    assert all(a[n] == b[n] for n in a if n != ".lock")
