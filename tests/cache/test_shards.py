"""The raw cache layout: contiguous uncompressed rows read with one preadv, same content as h5py."""
from __future__ import annotations

import dataclasses
import os

import h5py
import numpy as np
import pytest
from torch.utils.data import DataLoader

from vireid.inputs.dataset import CacheDataset
from vireid.cache.reader import CacheError, HeatmapCache
from vireid.inputs.transforms import TrainTransform
from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator
from pipeline.heatmaps import HeatmapJob
from vireid.data.scan import scan
from tests.inputs.test_dataset import TCFG
from tests.data.trees import make_sysu
from tests.pipeline import test_heatmaps as th

RAW = dataclasses.replace(th.SMALL, image_format="raw")


@pytest.fixture(scope="module")
def raw_cache(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("raw")
    root = tmp / "SYSU"
    spec = dataclasses.replace(make_sysu(root), expected={})
    manifest = scan("sysu", root, spec=spec, allow_partial=True)
    th.write_side_file(root, manifest)
    HeatmapJob(manifest, root, tmp / "cache", KeypointFileEstimator(root / SIDE_FILE), RAW, jobs=1).run()
    return HeatmapCache(tmp / "cache"), manifest


def test_raw_shards_are_contiguous_and_read_directly(raw_cache):
    cache, _ = raw_cache
    assert cache.attrs["image_format"] == "raw"
    with h5py.File(cache.root / cache.shards[0], "r") as f:
        for key in ("image", "heatmaps"):
            assert f[key].chunks is None and f[key].compression is None, key
            assert f[key].id.get_offset() is not None, key
    for i in range(len(cache)):
        image, maps = cache.read_arrays(i)
        _, quantised = cache.read_arrays(i, quantized=True)
        entry = cache.get(i)                                   # through h5py
        assert image.flags.writeable and image.dtype == np.uint8
        np.testing.assert_array_equal(image, entry["image"])
        np.testing.assert_array_equal(maps, entry["heatmaps"])
        assert quantised.dtype == np.uint8
        np.testing.assert_array_equal(quantised.astype(np.float32) / np.float32(255), entry["heatmaps"])
    assert all(d != (None, None) for d in cache._direct.values())    # the preadv path was the one used


def test_chunked_raw_shards_of_earlier_versions_still_read(raw_cache, tmp_path):
    """A raw cache written before the contiguous layout (chunked, lzf) reads the same."""
    cache, _ = raw_cache
    old = tmp_path / "old"
    old.mkdir()
    for p in cache.root.iterdir():
        if p.suffix != ".h5":
            (old / p.name).write_bytes(p.read_bytes())
            continue
        with h5py.File(p, "r") as src, h5py.File(old / p.name, "w") as dst:
            for key in src:
                data = src[key][()]
                if key in ("image", "heatmaps"):
                    dst.create_dataset(key, data=data, chunks=(1, *data.shape[1:]), compression="lzf")
                else:
                    src.copy(src[key], dst, name=key)
            dst.attrs.update(dict(src.attrs))
    legacy = HeatmapCache(old)
    for i in range(len(cache)):
        a, b = cache.read_arrays(i), legacy.read_arrays(i)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert all(d == (None, None) for d in legacy._direct.values())


def test_truncated_raw_shard_names_the_file(raw_cache, tmp_path):
    cache, _ = raw_cache
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in cache.root.iterdir():
        (broken / p.name).write_bytes(p.read_bytes())
    shard = broken / cache.shards[0]
    with h5py.File(shard, "r") as f:
        end = f["image"].id.get_offset() + f["image"].id.get_storage_size()
        last = f["image"].shape[0] - 1
    os.truncate(shard, end - 10)                               # cut into the last image row
    bad = HeatmapCache(broken)
    row_of_last = next(i for i, loc in enumerate(bad.locations) if loc == (0, last))
    with pytest.raises(CacheError, match=cache.shards[0]):
        bad.read_arrays(row_of_last)


def test_raw_cache_through_dataloader_workers_matches_in_process(raw_cache):
    cache, _ = raw_cache
    ds = CacheDataset(cache, transform=TrainTransform(TCFG), seed=3)
    keys = [(i, 1, 0) for i in range(len(ds))]
    direct = [ds[k] for k in keys]
    loader = DataLoader(ds, batch_size=None, sampler=keys, num_workers=2)
    for a, b in zip(direct, loader):
        for key in ("image", "heatmaps", "joint_weights"):
            assert (a[key] == b[key]).all(), key
