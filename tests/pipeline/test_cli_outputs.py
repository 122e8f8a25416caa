"""vireid-prep with an output folder it cannot write: one line naming the folder, before any work.

Drill (issue 21): with a read-only output folder, `manifest`, `synth`, `heatmaps`, `show` and
`train-estimator` each died with a PermissionError traceback, `train-estimator` after its
first epoch.
"""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import pipeline.train_estimator
import vireid.data.scan
from pipeline.cli import cli
from tests.data.trees import make_lip
from tests.fs import disk_full, one_line, read_only, snapshot
from tests.pipeline.test_heatmaps import build, dataset  # noqa: F401 - the tree fixture


def _no_work(monkeypatch, module, name):
    def refuse(*args, **kwargs):
        raise AssertionError(f"{name} ran although the output folder is not writable")
    monkeypatch.setattr(module, name, refuse)


def _assert_names_folder(res, folder):
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), repr(res.exception)
    line = one_line(res.output)
    assert str(folder) in line and "not writable" in line, line


def test_manifest(dataset, tmp_path, monkeypatch):  # noqa: F811
    root, _ = dataset
    _no_work(monkeypatch, vireid.data.scan, "scan")
    with read_only(tmp_path / "ro") as ro:
        res = CliRunner().invoke(cli, ["manifest", "--dataset", "sysu", "--root", str(root), "--out",
                                       str(ro / "m.json"), "--no-progress", "--allow-partial"])
    _assert_names_folder(res, ro)


def test_synth(tmp_path):
    with read_only(tmp_path / "ro") as ro:
        res = CliRunner().invoke(cli, ["synth", "--layout", "sysu", "--out", str(ro / "SYSU"), "--ids", "4",
                                       "--no-progress"])
    _assert_names_folder(res, ro / "SYSU")
    assert list(ro.iterdir()) == []


def test_heatmaps(dataset, tmp_path, monkeypatch):  # noqa: F811
    root, _ = dataset
    _no_work(monkeypatch, vireid.data.scan, "scan")
    with read_only(tmp_path / "ro") as ro:
        res = CliRunner().invoke(cli, ["heatmaps", "--dataset", "sysu", "--root", str(root), "--out", str(ro),
                                       "--estimator", "keypoints", "--input-size", "32x16", "--no-progress",
                                       "--allow-partial"])
    _assert_names_folder(res, ro)


def test_show(dataset, tmp_path):  # noqa: F811
    root, manifest = dataset
    build(root, manifest, tmp_path / "c")
    with read_only(tmp_path / "ro") as ro:
        res = CliRunner().invoke(cli, ["show", str(tmp_path / "c"), "--ids", "2", "--out", str(ro / "png")])
    _assert_names_folder(res, ro / "png")


@pytest.mark.parametrize("sub", ["", "runs/"])
def test_train_estimator(tmp_path, monkeypatch, sub):
    make_lip(tmp_path / "LIP")
    _no_work(monkeypatch, pipeline.train_estimator, "LipTrainSet")
    with read_only(tmp_path / "ro") as ro:
        res = CliRunner().invoke(cli, ["train-estimator", "--root", str(tmp_path / "LIP"), "--out",
                                       str(ro / f"{sub}lip.pt"), "--epochs", "1", "--input-size", "32",
                                       "--num-refinement-stages", "0", "--workers", "0", "--no-progress",
                                       "--allow-partial"])
    _assert_names_folder(res, (ro / f"{sub}lip.pt").parent)


# ---------------------------------------------------------------- paths that do not exist (issue 16)
@pytest.mark.parametrize("args,named", [
    (["manifest", "--dataset", "sysu", "--root", "{t}/nope", "--out", "{t}/m.json"], "{t}/nope"),
    (["heatmaps", "--dataset", "sysu", "--root", "{t}/nope", "--out", "{t}/c"], "{t}/nope"),
    (["heatmaps", "--dataset", "sysu", "--root", "{root}", "--out", "{t}/c", "--manifest", "{t}/nope.json",
      "--estimator", "keypoints"], "{t}/nope.json"),
    (["heatmaps", "--dataset", "sysu", "--root", "{root}", "--out", "{t}/c", "--weights", "{t}/nope.pt"],
     "{t}/nope.pt"),
    (["heatmaps", "--dataset", "sysu", "--root", "{root}", "--out", "{t}/c", "--estimator", "keypoints",
      "--keypoints", "{t}/nope.json", "--allow-partial"], "{t}/nope.json"),
    (["verify", "{t}/nope"], "{t}/nope"),
    (["show", "{t}/nope", "--out", "{t}/png"], "{t}/nope"),
    (["checksum", "{t}/nope"], "{t}/nope"),
    (["train-estimator", "--root", "{t}/nope", "--out", "{t}/lip.pt"], "{t}/nope"),
    (["train-estimator", "--root", "{lip}", "--out", "{t}/lip.pt", "--init", "{t}/nope.pt", "--allow-partial",
      "--input-size", "32", "--num-refinement-stages", "0", "--workers", "0", "--no-progress"], "{t}/nope.pt"),
], ids=lambda v: " ".join(v[:1] + [a for a in v if a.startswith("--") and a not in ("--dataset", "--out")][:2])
    if isinstance(v, list) else None)
def test_a_path_that_does_not_exist_is_one_line_naming_it(dataset, tmp_path, args, named):  # noqa: F811
    root, _ = dataset
    make_lip(tmp_path / "LIP")
    fill = {"t": str(tmp_path), "root": str(root), "lip": str(tmp_path / "LIP")}
    res = CliRunner().invoke(cli, [a.format(**fill) for a in args])
    assert res.exit_code == 1, (res.output, repr(res.exception))
    assert named.format(**fill) in one_line(res.output)


# ---------------------------------------------------------------- a full disk during a write (issue 16)
def test_full_disk_manifest_keeps_the_earlier_manifest(dataset, tmp_path, monkeypatch):  # noqa: F811
    root, manifest = dataset
    out = tmp_path / "m.json"
    manifest.save(out)
    before = snapshot(tmp_path)
    failed = disk_full(monkeypatch)
    res = CliRunner().invoke(cli, ["manifest", "--dataset", "sysu", "--root", str(root), "--out", str(out),
                                   "--no-progress", "--allow-partial"])
    assert res.exit_code == 1 and failed
    assert one_line(res.output) == f"Error: {out}: cannot write: no space left on the device"
    assert snapshot(tmp_path) == before


def test_full_disk_heatmaps_keeps_the_finished_shards(dataset, tmp_path, monkeypatch):  # noqa: F811
    root, manifest = dataset
    build(root, manifest, tmp_path / "ref")
    manifest.save(tmp_path / "m.json")
    out = tmp_path / "c"
    args = ["heatmaps", "--dataset", "sysu", "--root", str(root), "--out", str(out), "--manifest",
            str(tmp_path / "m.json"), "--estimator", "keypoints", "--input-size", "32x16", "--sigma", "2",
            "--shard-size", "10", "--no-progress"]
    disk_full(monkeypatch, after=4)               # cache.json, manifest.json, shards 0 and 1; then shard 2 fails
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1
    assert one_line(res.output) == f"Error: {out / 'shard-00002.h5'}: cannot write: no space left on the device"
    assert sorted(p.name for p in out.iterdir()) == [".lock", "cache.json", "manifest.json", "shard-00000.h5",
                                                      "shard-00001.h5"]
    for name in ("shard-00000.h5", "shard-00001.h5"):
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()
    monkeypatch.undo()
    res = CliRunner().invoke(cli, args)           # space again: the run resumes from shard 2
    assert res.exit_code == 0 and "(2 already done)" in res.output, res.output


def test_full_disk_show_and_checksum(dataset, tmp_path, monkeypatch):  # noqa: F811
    root, manifest = dataset
    build(root, manifest, tmp_path / "c")
    before = snapshot(tmp_path / "c")
    disk_full(monkeypatch)
    res = CliRunner().invoke(cli, ["show", str(tmp_path / "c"), "--ids", "2", "--out", str(tmp_path / "png")])
    assert res.exit_code == 1
    assert one_line(res.output) == f"Error: {tmp_path / 'png' / 'id0002.png'}: cannot write: no space left on the device"
    res = CliRunner().invoke(cli, ["checksum", str(tmp_path / "c")])       # nothing to add: nothing written
    assert res.exit_code == 0 and "added to 0 shard(s) (6 had them)" in res.output
    from tests.pipeline.test_repair import _strip_checksums

    monkeypatch.undo()
    _strip_checksums(tmp_path / "c")
    before = snapshot(tmp_path / "c")
    disk_full(monkeypatch, after=1)
    res = CliRunner().invoke(cli, ["checksum", str(tmp_path / "c")])
    assert res.exit_code == 1
    assert one_line(res.output) == (f"Error: {tmp_path / 'c' / 'shard-00001.h5'}: cannot write: no space left on "
                                    f"the device")
    after = snapshot(tmp_path / "c")
    assert after["shard-00001.h5"] == before["shard-00001.h5"]              # the shard that failed: as it was
    assert {k for k in after if after[k] != before.get(k)} == {"shard-00000.h5"}   # only the one finished


def test_full_disk_synth_writes_nothing(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    real = Path.write_bytes
    calls = {"n": 0}

    def write_bytes(self, data):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    res = CliRunner().invoke(cli, ["synth", "--layout", "sysu", "--out", str(tmp_path / "S"), "--ids", "4",
                                   "--no-progress"])
    assert res.exit_code == 1
    line = one_line(res.output)
    assert str(tmp_path / "S") in line and "No space left on device" in line
    assert list(tmp_path.iterdir()) == []                                 # no data set, no staging folder


def test_full_disk_train_estimator(tmp_path, monkeypatch):
    make_lip(tmp_path / "LIP")
    out = tmp_path / "runs" / "lip.pt"
    disk_full(monkeypatch)
    res = CliRunner().invoke(cli, ["train-estimator", "--root", str(tmp_path / "LIP"), "--out", str(out), "--epochs",
                                   "1", "--input-size", "32", "--num-refinement-stages", "0", "--workers", "0",
                                   "--batch-size", "2", "--no-progress", "--allow-partial"])
    assert res.exit_code == 1
    assert one_line(res.output) == f"Error: {out}: cannot write: no space left on the device"
    assert list((tmp_path / "runs").iterdir()) == []


def test_checksum_and_repair_on_a_read_only_cache(dataset, tmp_path):  # noqa: F811
    root, manifest = dataset
    build(root, manifest, tmp_path / "c")
    for args in (["checksum", str(tmp_path / "c")],
                 ["heatmaps", "--dataset", "sysu", "--root", str(root), "--out", str(tmp_path / "c"), "--estimator",
                  "keypoints", "--input-size", "32x16", "--sigma", "2", "--shard-size", "10", "--repair"]):
        with read_only(tmp_path / "c") as ro:
            res = CliRunner().invoke(cli, args)
        _assert_names_folder(res, ro)
