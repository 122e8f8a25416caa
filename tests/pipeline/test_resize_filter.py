"""cache.json records how the crops were resized (resize_filter); caches made before it are read
and reported as resized with INTER_LINEAR."""
from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.heatmaps import HeatmapJob
from pipeline.verify import inspect_cache
from vireid.cache.format import RESIZE_FILTER, resize_crop
from vireid.cache.reader import CacheError, HeatmapCache
from vireid.data.scan import scan
from tests.data.trees import make_sysu
from tests.pipeline.test_heatmaps import SIDE_FILE, SMALL, KeypointFileEstimator, build, dataset, write_side_file  # noqa: F401

OLD = "linear (made before the filter was recorded)"


def test_filter_recorded_and_crops_made_with_it(tmp_path):
    # the test tree's 16x8 crops are flat colours (any filter keeps those): give them texture,
    # 48x24 (shrunk to 32x16) and 8x4 (enlarged)
    root = tmp_path / "SYSU"
    spec = make_sysu(root)
    rng = np.random.default_rng(0)
    for k, path in enumerate(sorted(root.glob("cam*/*/*.jpg"))):
        hw = (48, 24) if k % 2 else (8, 4)
        assert cv2.imwrite(str(path), rng.integers(0, 256, (*hw, 3), dtype=np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])
    manifest = scan("sysu", root, spec=spec)
    write_side_file(root, manifest)
    build(root, manifest, tmp_path / "c")
    assert json.loads((tmp_path / "c" / "cache.json").read_text())["resize_filter"] == RESIZE_FILTER
    cache = HeatmapCache(tmp_path / "c")
    for i in (0, 1, 17, 50):
        source = cv2.imread(str(root / cache.paths[i]), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(cache.get(i)["image"], resize_crop(source, SMALL.input_size))
        linear = cv2.resize(source, SMALL.input_size[::-1], interpolation=cv2.INTER_LINEAR)
        assert not np.array_equal(cache.get(i)["image"], linear)
    res = CliRunner().invoke(cli, ["verify", str(tmp_path / "c")])
    assert res.exit_code == 0 and f"crops resized with {RESIZE_FILTER}" in res.output, res.output


def _make_old(out):
    """The cache as a version before resize_filter wrote it: no attribute in cache.json or the shards."""
    attrs = json.loads((out / "cache.json").read_text())
    del attrs["resize_filter"]
    (out / "cache.json").write_text(json.dumps(attrs))
    for shard in sorted(out.glob("shard-*.h5")):
        with h5py.File(shard, "r+") as f:
            shard_attrs = json.loads(f.attrs["vireid_cache"])
            del shard_attrs["resize_filter"]
            f.attrs["vireid_cache"] = json.dumps(shard_attrs, sort_keys=True)


def test_old_cache_is_read_and_its_filter_shown(dataset, tmp_path):  # noqa: F811
    root, manifest = dataset
    out = tmp_path / "old"
    build(root, manifest, out)
    _make_old(out)
    cache = HeatmapCache(out)
    assert len(cache) == 52 and cache.get(3)["image"].shape == (32, 16, 3)
    report = inspect_cache(out)
    assert report.ok and report.resize_filter == OLD
    assert any("INTER_LINEAR" in n for n in report.notes)
    res = CliRunner().invoke(cli, ["verify", str(out)])
    assert res.exit_code == 0, res.output
    assert f"crops resized with {OLD}" in res.output and res.output.strip().endswith("OK")
    # resuming it with this version would mix two filters in one cache: refused, naming the attribute
    est = KeypointFileEstimator(root / SIDE_FILE)
    with pytest.raises(CacheError, match="resize_filter"):
        HeatmapJob(manifest, root, out, est, SMALL).run()
