"""The heatmap job: cache content, resume after a kill, errors, lock, parts, verify, show."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator
from pipeline.heatmaps import HeatmapJob, JobError, cache_lock, scale_keypoints
from pipeline.verify import inspect_cache
from vireid.data.scan import scan
from vireid.cache.reader import (CacheConfig, CacheError, HeatmapCache, dequantize_heatmaps, quantize_heatmaps)
from vireid.pose.joints import JOINT_NAMES
from tests.data.trees import make_sysu

SMALL = CacheConfig(input_size=(32, 16), stride=4, sigma=2.0, shard_size=10)


def write_side_file(root: Path, manifest) -> None:
    """Keypoints of a fake upright person in every image (16x8 crops)."""
    images = {}
    for k, rec in enumerate(manifest.records):
        rows = []
        for j in range(16):
            x = 1.0 + (j % 6)
            y = 15.0 - j * 0.9
            v = 0 if (j == 9 and k % 5 == 0) else 2          # some heads missing
            rows.append([x, y, v])
        images[rec.path] = rows
    (root / SIDE_FILE).write_text(json.dumps({"format": "vireid-keypoints/1", "joints": list(JOINT_NAMES),
                                              "images": images}))


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "SYSU"
    spec = make_sysu(root)
    manifest = scan("sysu", root, spec=spec)
    write_side_file(root, manifest)
    return root, manifest


def build(root, manifest, out, config=SMALL, **kw):
    est = KeypointFileEstimator(root / SIDE_FILE)
    return HeatmapJob(manifest, root, out, est, config, jobs=2, **kw).run()


def cache_content(out: Path) -> dict:
    content = {"index": (out / "index.json").read_text(), "cache": (out / "cache.json").read_text()}
    for shard in sorted(out.glob("shard-*.h5")):
        with h5py.File(shard, "r") as f:
            for key in f:
                data = f[key][()]
                content[f"{shard.name}/{key}"] = [bytes(x) for x in data] if data.dtype == object else data
            content[f"{shard.name}/attrs"] = dict(f.attrs)
    return content


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            assert a[k] == b[k], k


def test_cache_content_matches_keypoints(dataset, tmp_path):
    root, manifest = dataset
    res = build(root, manifest, tmp_path / "c")
    assert res.complete and res.images == len(manifest.records) == 52 and res.shards_written == 6
    assert inspect_cache(tmp_path / "c").problems == []
    cache = HeatmapCache(tmp_path / "c")
    assert len(cache) == 52
    e = cache.get(cache.index_of("cam3/0007/0002.jpg"))
    assert e["image"].shape == (32, 16, 3) and e["heatmaps"].shape == (16, 8, 4)
    assert (e["pid"], e["camid"], e["modality"]) == (7, 3, 1)
    # the tiny crops are 16x8, stored at 32x16: keypoints scale by 2 with the pixel-centre rule
    expect = scale_keypoints(np.array([[1.0 + (j % 6), 15.0 - j * 0.9] for j in range(16)]), (16, 8), (32, 16))
    ok = e["confidence"] > 0
    np.testing.assert_allclose(e["keypoints"][ok], expect[ok], atol=1e-5)
    # each present joint's map peaks at the grid cell containing its keypoint (stride 4)
    for j in np.flatnonzero(ok):
        r, c = np.unravel_index(np.argmax(e["heatmaps"][j]), e["heatmaps"][j].shape)
        x, y = e["keypoints"][j]
        assert abs(c * 4 + 1.5 - x) <= 4 and abs(r * 4 + 1.5 - y) <= 4, JOINT_NAMES[j]
    missing = cache.get(0)
    assert missing["confidence"][9] == 0 and np.isnan(missing["keypoints"][9]).all()
    assert missing["heatmaps"][9].max() == 0


def test_quantisation_error_bound():
    rng = np.random.default_rng(0)
    maps = rng.random((16, 72, 36)).astype(np.float32)
    err = np.abs(dequantize_heatmaps(quantize_heatmaps(maps)) - maps).max()
    assert err <= 0.5 / 255 + 1e-7
    with pytest.raises(ValueError, match="NaN"):
        quantize_heatmaps(np.full((1, 2, 2), np.nan, np.float32))


class Boom(RuntimeError):
    pass


def test_interrupted_run_resumes_to_identical_cache(dataset, tmp_path):
    root, manifest = dataset
    build(root, manifest, tmp_path / "ref")
    est = KeypointFileEstimator(root / SIDE_FILE)
    calls = {"n": 0}
    original = est.estimate

    def flaky(images, paths):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Boom("simulated crash in the middle of shard 3")
        return original(images, paths)

    est.estimate = flaky
    est.batch_size = 5
    with pytest.raises(Boom):
        HeatmapJob(manifest, root, tmp_path / "c", est, SMALL, jobs=1).run()
    done = sorted(p.name for p in (tmp_path / "c").glob("shard-*.h5"))
    assert done == ["shard-00000.h5"]                      # shard 1 was half-way: no file under its name
    assert not (tmp_path / "c" / "index.json").exists()
    with pytest.raises(CacheError, match="incomplete"):
        HeatmapCache(tmp_path / "c")
    res = build(root, manifest, tmp_path / "c")
    assert res.shards_skipped == 1 and res.shards_written == 5 and res.complete
    assert_same(cache_content(tmp_path / "ref"), cache_content(tmp_path / "c"))


def test_kill_9_then_resume(dataset, tmp_path):
    root, manifest = dataset
    build(root, manifest, tmp_path / "ref")
    out = tmp_path / "c"
    script = textwrap.dedent(f"""
        import time, sys
        from pathlib import Path
        from pipeline.estimators.keypoints import KeypointFileEstimator
        from pipeline.heatmaps import HeatmapJob
        from vireid.data.manifest import Manifest
        from tests.pipeline.test_heatmaps import SMALL
        est = KeypointFileEstimator(Path({str(root / SIDE_FILE)!r}))
        slow = est.estimate
        def estimate(images, paths):
            time.sleep(0.3)
            return slow(images, paths)
        est.estimate = estimate
        est.batch_size = 4
        m = Manifest.load({str(tmp_path / 'm.json')!r})
        HeatmapJob(m, Path({str(root)!r}), Path({str(out)!r}), est, SMALL, jobs=1).run()
    """)
    manifest.save(tmp_path / "m.json")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.time() + 60
    while not (out / "shard-00001.h5").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in out.glob("shard-*.h5"))
    assert 1 <= len(finished) < 6, finished
    for name in finished:                                   # whatever is under a final name is whole
        with h5py.File(out / name, "r") as f:
            assert f["heatmaps"].shape[0] == int(f.attrs["rows"])
    res = build(root, manifest, out)
    assert res.complete and res.shards_skipped == len(finished)
    assert_same(cache_content(tmp_path / "ref"), cache_content(out))


def test_corrupt_image_fail_and_skip(dataset, tmp_path):
    root, manifest = dataset
    bad = root / "cam4" / "0002" / "0001.jpg"
    bad.write_bytes(b"garbage")
    with pytest.raises(JobError, match=str(bad)):
        build(root, manifest, tmp_path / "c1")
    res = build(root, manifest, tmp_path / "c2", on_error="skip")
    assert res.complete and res.images == 51 and res.images_skipped == 1
    skipped = json.loads((tmp_path / "c2" / "skipped.json").read_text())
    assert skipped == [{"path": "cam4/0002/0001.jpg", "reason": "cannot be decoded as an image"}]
    assert inspect_cache(tmp_path / "c2").problems == []


def test_second_writer_refused(dataset, tmp_path):
    root, manifest = dataset
    with cache_lock(tmp_path / "c", (0, 1)):
        with pytest.raises(JobError, match="another vireid-prep process"):
            build(root, manifest, tmp_path / "c")


def test_other_settings_refused_by_name(dataset, tmp_path):
    root, manifest = dataset
    build(root, manifest, tmp_path / "c")
    with pytest.raises(CacheError, match="sigma: cache has 2.0, expected 3.0"):
        build(root, manifest, tmp_path / "c", config=CacheConfig(input_size=(32, 16), stride=4, sigma=3.0,
                                                                 shard_size=10))
    cache = HeatmapCache(tmp_path / "c")
    with pytest.raises(CacheError, match="input_size"):
        cache.check({"input_size": [288, 144]})


def test_parts_write_disjoint_shards_and_match(dataset, tmp_path):
    root, manifest = dataset
    build(root, manifest, tmp_path / "ref")
    a = build(root, manifest, tmp_path / "c", part=(0, 2))
    assert not a.complete and a.shards_written == 3
    b = build(root, manifest, tmp_path / "c", part=(1, 2))
    assert b.complete and b.shards_written == 3
    assert_same(cache_content(tmp_path / "ref"), cache_content(tmp_path / "c"))


def test_verify_reports_problems(dataset, tmp_path):
    root, manifest = dataset
    build(root, manifest, tmp_path / "c")
    (tmp_path / "c" / "shard-00002.h5").unlink()
    problems = inspect_cache(tmp_path / "c").problems
    assert any("shard-00002.h5: shard missing: it should hold 10 image(s)" in p for p in problems)
    assert not any("absent from the cache" in p for p in problems)        # named with their shard
    res = CliRunner().invoke(cli, ["verify", str(tmp_path / "c")])
    assert res.exit_code == 1 and "shard-00002.h5" in res.output


def test_cli_heatmaps_verify_show(dataset, tmp_path):
    root, manifest = dataset
    out = tmp_path / "cache"
    res = CliRunner().invoke(cli, ["heatmaps", "--dataset", "sysu", "--root", str(root), "--out", str(out),
                                   "--estimator", "keypoints", "--input-size", "32x16", "--sigma", "2",
                                   "--shard-size", "16", "--no-progress", "--allow-partial"])
    assert res.exit_code == 0, res.output
    assert "52 images in 4 new shard(s)" in res.output
    # the share of confident joints per modality (exact keypoints: every joint inside the crop)
    from vireid.cache.coverage import describe_coverage, joint_coverage
    from vireid.cache.reader import HeatmapCache
    line = describe_coverage(joint_coverage(HeatmapCache(out).metadata()))
    assert f"{out}: {line}" in res.output and line.startswith("joints with confidence > 0: RGB ")
    assert CliRunner().invoke(cli, ["verify", str(out)]).output.strip().endswith("OK")
    res = CliRunner().invoke(cli, ["show", str(out), "--ids", "2,7", "--per-id", "3", "--out", str(tmp_path / "png")])
    assert res.exit_code == 0, res.output
    import cv2
    img = cv2.imread(str(tmp_path / "png" / "id0002.png"))
    assert img.shape == (64, 48, 3)                        # 2 rows of 32 px, 3 columns of 16 px
    res = CliRunner().invoke(cli, ["heatmaps", "--dataset", "sysu", "--root", str(root), "--out", str(out),
                                   "--estimator", "lip", "--no-progress"])
    assert res.exit_code == 1 and "needs --weights" in res.output


def test_metadata_matches_entries(dataset, tmp_path):
    root, manifest = dataset
    build(root, manifest, tmp_path / "c")
    cache = HeatmapCache(tmp_path / "c")
    meta = cache.metadata()
    for i in (0, 17, 51):
        e = cache.get(i, with_image=False)
        assert (meta["pid"][i], meta["camid"][i], meta["modality"][i]) == (e["pid"], e["camid"], e["modality"])
    assert set(meta["modality"].tolist()) == {0, 1}
