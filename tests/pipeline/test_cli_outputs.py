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
from tests.fs import one_line, read_only
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
