"""Row checksums: a flipped byte anywhere in a shard's data is found by verify and by the reader.

A byte is flipped at several offsets of every dataset of a real shard (its contiguous data,
its chunks and, for variable-length datasets, the element bytes in the global heap), one at
a time; each time `vireid-prep verify` must report the shard and the dataset must refuse to
serve it (a :class:`CacheError` naming the shard), never hand out changed bytes.
"""
from __future__ import annotations

import dataclasses
import shutil

import h5py
import numpy as np
import pytest

from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator
from pipeline.heatmaps import HeatmapJob
from pipeline.verify import inspect_cache
from tests.data.trees import make_sysu
from tests.fs import data_regions, flip_byte, spread
from tests.pipeline import test_heatmaps as th
from vireid.cache import rowsums
from vireid.inputs.dataset import CacheDataset
from vireid.data.scan import scan
from vireid.cache.reader import CacheError, DamagedRowError, HeatmapCache


def _build(tmp, image_format):
    root = tmp / "SYSU"
    spec = dataclasses.replace(make_sysu(root), expected={})
    manifest = scan("sysu", root, spec=spec, allow_partial=True)
    th.write_side_file(root, manifest)
    config = dataclasses.replace(th.SMALL, image_format=image_format)
    HeatmapJob(manifest, root, tmp / "cache", KeypointFileEstimator(root / SIDE_FILE), config, jobs=1).run()
    return tmp / "cache"


@pytest.fixture(scope="module", params=["raw", pytest.param("jpeg", marks=pytest.mark.slow)])
def cache_dir(tmp_path_factory, request):
    return _build(tmp_path_factory.mktemp(request.param), request.param)


def _every_row_read(root):
    """What training and evaluation do: the dataset's metadata (CacheDataset checks it), then
    every row as the dataset reads it (read_arrays) and as pictures do (get)."""
    cache = HeatmapCache(root)
    CacheDataset(cache)
    for i in range(len(cache)):
        cache.read_arrays(i, quantized=True)
        cache.get(i)


def test_checksums_are_written_and_match(cache_dir):
    with h5py.File(cache_dir / "shard-00001.h5", "r") as f:
        assert f.attrs["row_checksum"] == "xxh3_64"
        sums = f["checksum"][()]
        assert sums.shape == (10, 3) and sums.dtype == np.uint64
        assert int(sums[3, 0]) == rowsums.digest(np.asarray(f["image"][3]))
        assert int(sums[3, 1]) == rowsums.digest(f["heatmaps"][3])
    assert HeatmapCache(cache_dir).row_checksum == "xxh3_64"
    _every_row_read(cache_dir)                                     # a sound cache reads through
    assert inspect_cache(cache_dir).problems == []


def test_a_flip_anywhere_in_any_dataset_is_caught(cache_dir, tmp_path):
    work = tmp_path / "cache"
    shutil.copytree(cache_dir, work)
    shard = work / "shard-00001.h5"
    regions = data_regions(shard)
    with h5py.File(shard, "r") as f:
        assert set(f) <= {k.split(":")[0] for k in regions}          # every dataset has its region
    tried = 0
    for name, spans in sorted(regions.items()):
        if name.endswith(":heap"):                                   # the first, a middle and the last element
            spans = [spans[0], spans[len(spans) // 2], spans[-1]]
        for offset in spread(spans, per_region=1):
            flip_byte(shard, offset, 0x10)
            try:
                problems = inspect_cache(work).problems
                assert any("shard-00001.h5" in p for p in problems), (name, offset, problems)
                with pytest.raises(CacheError, match="shard-00001.h5"):
                    _every_row_read(work)
            finally:
                flip_byte(shard, offset, 0x10)                       # restore for the next one
            tried += 1
    assert tried >= 30, tried
    assert inspect_cache(work).problems == []


def test_damaged_row_is_named_by_shard_row_and_source(cache_dir, tmp_path):
    work = tmp_path / "cache"
    shutil.copytree(cache_dir, work)
    shard = work / "shard-00002.h5"
    with h5py.File(shard, "r") as f:
        source = f["path"].asstr()[4]
    start, length = data_regions(shard)["heatmaps"][0] if "heatmaps" in data_regions(shard) else (0, 0)
    cache = HeatmapCache(work)
    i = cache.index_of(source)
    with h5py.File(shard, "r") as f:
        ds = f["heatmaps"]
        if ds.chunks is None:
            offset = start + 4 * int(np.prod(ds.shape[1:])) + 7
        else:
            info = ds.id.get_chunk_info_by_coord((4, 0, 0, 0))
            offset = info.byte_offset + info.size // 2
    flip_byte(shard, offset, 0x04)
    with pytest.raises(DamagedRowError) as err:
        HeatmapCache(work).read_arrays(i)
    assert f"{shard}: row 4 ({source}) is damaged" in str(err.value) and "--repair" in str(err.value)
    report = inspect_cache(work)
    assert report.bad_rows == {2: [4]}
    assert any(p.startswith(f"{shard}: row 4 ({source}): ") and "heatmaps" in p for p in report.problems)


def test_checks_can_be_turned_off_for_a_reader(cache_dir, tmp_path):
    work = tmp_path / "cache"
    shutil.copytree(cache_dir, work)
    shard = work / "shard-00000.h5"
    offset = data_regions(shard)["checksum"][0][0]
    flip_byte(shard, offset, 0x01)                                 # every row of shard 0 now "damaged"
    with pytest.raises(DamagedRowError):
        HeatmapCache(work).read_arrays(0)
    image, _ = HeatmapCache(work, check_rows=False).read_arrays(0)
    assert image.shape == (32, 16, 3)


def _shard_content(path):
    out = {}
    with h5py.File(path, "r") as f:
        for key in f:
            data = f[key][()]
            out[key] = [np.asarray(x).tobytes() for x in data] if data.dtype == object else data.tobytes()
        out["attrs"] = {k: v.tobytes() if isinstance(v, np.ndarray) else v for k, v in f.attrs.items()}
    return out


def _rows(root):
    cache = HeatmapCache(root)
    CacheDataset(cache)
    out = []
    for i in range(len(cache)):
        image, maps = cache.read_arrays(i, quantized=True)
        e = cache.get(i, with_image=False)
        out.append((image.tobytes(), maps.tobytes(), e["pid"], e["camid"], e["modality"], e["confidence"].tobytes(),
                    e["keypoints"].tobytes()))
    return out


@pytest.mark.slow
def test_a_flip_at_any_offset_of_the_file_is_caught_or_harmless(tmp_path):
    """The whole shard file, HDF5 structures included, every 151st byte: verify reports the
    shard or the flip changed nothing stored (unused bytes); the reader raises or serves
    exactly the original rows."""
    root = _build(tmp_path, "raw")
    shard = root / "shard-00001.h5"
    reference, rows = _shard_content(shard), _rows(root)
    caught = harmless = refused = 0
    for offset in range(0, shard.stat().st_size, 151):
        flip_byte(shard, offset, 0x10)
        try:
            if any("shard-00001.h5" in p for p in inspect_cache(root).problems):
                caught += 1
            else:
                assert _shard_content(shard) == reference, f"offset {offset}: changed but verify said OK"
                harmless += 1
            try:
                assert _rows(root) == rows, f"offset {offset}: the reader served changed rows"
            except CacheError:
                refused += 1
        finally:
            flip_byte(shard, offset, 0x10)
    assert caught > 100 and refused > 50, (caught, harmless, refused)
