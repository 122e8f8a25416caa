"""The heatmap job against damaged inputs and leftovers: stale temporary files, unreadable
images found while scanning, images changed after the manifest was made."""
from __future__ import annotations

import json

import cv2
import numpy as np
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.verify import inspect_cache
from tests.fs import one_line
from tests.pipeline.test_heatmaps import build, dataset  # noqa: F401 - the tree fixture


def _heatmaps_args(root, out, *extra):
    return ["heatmaps", "--dataset", "sysu", "--root", str(root), "--out", str(out), "--estimator", "keypoints",
            "--input-size", "32x16", "--sigma", "2", "--shard-size", "10", "--no-progress", *extra]


def test_stale_temporary_shards_are_removed(dataset, tmp_path):  # noqa: F811
    """Drill: a kill during a shard write left .shard-*.h5.tmp-* files behind for good."""
    root, manifest = dataset
    out = tmp_path / "c"
    out.mkdir()
    stale = [out / ".shard-00001.h5.tmp-abc123.h5", out / ".shard-00004.h5.tmp-x_9.h5",
             out / ".index.json.tmp-q1w2"]
    for p in stale:
        p.write_bytes(b"half a shard")
    other = out / "notes.txt"
    other.write_text("the user's own file")
    res = build(root, manifest, out)
    assert res.complete
    assert [p.name for p in stale if p.exists()] == []
    assert other.read_text() == "the user's own file"
    assert inspect_cache(out).problems == []


def test_a_part_removes_only_the_temporary_files_of_its_own_shards(dataset, tmp_path):  # noqa: F811
    root, manifest = dataset
    out = tmp_path / "c"
    out.mkdir()
    mine, theirs = out / ".shard-00002.h5.tmp-a.h5", out / ".shard-00001.h5.tmp-b.h5"
    for p in (mine, theirs):
        p.write_bytes(b"x")
    build(root, manifest, out, part=(0, 2))          # shards 0, 2, 4
    assert not mine.exists() and theirs.exists()     # shard 1 is part 1's: maybe being written now


def test_skip_applies_to_unreadable_images_found_by_the_scan(dataset, tmp_path):  # noqa: F811
    """Drill: `heatmaps --allow-partial --on-error skip` exited 1 on a zero-byte image when it
    scanned the tree itself (skip applied only with --manifest)."""
    root, _ = dataset
    bad = root / "cam1" / "0004" / "0002.jpg"
    bad.write_bytes(b"")
    out = tmp_path / "c"
    res = CliRunner().invoke(cli, _heatmaps_args(root, out, "--allow-partial", "--on-error", "skip"))
    assert res.exit_code == 0, res.output
    assert "51 images" in res.output and "1 skipped" in res.output
    skipped = json.loads((out / "skipped.json").read_text())
    assert skipped == [{"path": "cam1/0004/0002.jpg", "reason": "zero-byte file"}]
    assert inspect_cache(out).problems == []
    res = CliRunner().invoke(cli, _heatmaps_args(root, tmp_path / "c2", "--allow-partial"))
    assert res.exit_code == 1 and str(bad) in res.output          # the default still stops, naming it


def test_image_changed_after_the_manifest_is_refused(dataset, tmp_path):  # noqa: F811
    """Drill: heatmaps never checked image contents against the manifest's hashes."""
    root, manifest = dataset
    manifest.save(tmp_path / "m.json")
    changed = root / "cam4" / "0005" / "0001.jpg"
    img = cv2.imread(str(changed))
    ok, buf = cv2.imencode(".jpg", np.clip(img.astype(int) + 40, 0, 255).astype(np.uint8))
    changed.write_bytes(buf.tobytes())
    out = tmp_path / "c"
    res = CliRunner().invoke(cli, _heatmaps_args(root, out, "--manifest", str(tmp_path / "m.json")))
    assert res.exit_code == 1, res.output
    line = one_line(res.output)
    assert str(changed) in line and "differs from the manifest" in line
    res = CliRunner().invoke(cli, _heatmaps_args(root, tmp_path / "c2", "--manifest", str(tmp_path / "m.json"),
                                                 "--on-error", "skip"))
    assert res.exit_code == 1 and str(changed) in res.output      # a stale manifest is never skipped over
