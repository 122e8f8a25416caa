"""vireid-extract, -search, -export and -regdb with an output they cannot write (issue 16): a
read-only folder is one line naming it before any work; a full disk is one line naming the file."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import vireid.model.checkpoint
import vireid.experiments.regdb_trials
import vireid.inference.extractor
from tests.fs import disk_full, one_line, read_only
from vireid.cli.export import cli as export_cli
from vireid.cli.extract import cli as extract_cli
from vireid.cli.regdb import cli as regdb_cli
from vireid.cli.search import cli as search_cli


def _refuse(monkeypatch, module, name):
    def refuse(*args, **kwargs):
        raise AssertionError(f"{name} ran although the output folder is not writable")
    monkeypatch.setattr(module, name, refuse)


def _commands(trained, ro):
    return {
        "extract": (extract_cli, ["--checkpoint", str(trained.checkpoint), "--images", str(trained.root / "cam1"),
                                  "--modality", "rgb", "--out", str(ro / "g.h5"), "--no-progress"],
                    vireid.inference.extractor, "FeatureExtractor", ro),
        "search": (search_cli, ["--gallery", str(ro.parent / "g.h5"), str(trained.root / "cam3"), "--out",
                                str(ro / "search")], vireid.inference.extractor, "FeatureExtractor", ro / "search"),
        "export": (export_cli, ["--checkpoint", str(trained.checkpoint), "--format", "torchscript", "--out",
                                str(ro / "m.ts")], vireid.model.checkpoint, "build_model_from_checkpoint", ro),
        "regdb": (regdb_cli, ["--checkpoints", str(ro.parent / "r{trial}" / "last.pt"), "--cache", str(trained.cache),
                              "--out", str(ro / "regdb"), "--no-progress"], vireid.experiments.regdb_trials,
                  "run_regdb_trials", ro / "regdb"),
    }


@pytest.mark.parametrize("name", ["extract", "search", "export", "regdb"])
def test_read_only_output_is_one_line_before_any_work(trained, tmp_path, monkeypatch, name):
    cli, args, module, work, named = _commands(trained, tmp_path / "ro")[name]
    _refuse(monkeypatch, module, work)
    with read_only(tmp_path / "ro"):
        res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1, repr(res.exception)
    line = one_line(res.output)
    assert str(named) in line and "not writable" in line, line


@pytest.mark.parametrize("name", ["extract", "export"])
def test_full_disk_is_one_line_naming_the_file(trained, tmp_path, monkeypatch, name):
    cli, args, _, _, _ = _commands(trained, tmp_path / "out")[name]
    (tmp_path / "out").mkdir()
    failed = disk_full(monkeypatch)
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1, repr(res.exception)
    line = one_line(res.output)
    assert "no space left on the device" in line and str(tmp_path / "out") in line, line
    assert failed
    assert [p.name for p in (tmp_path / "out").iterdir() if not p.name.endswith(".parts")] == []
