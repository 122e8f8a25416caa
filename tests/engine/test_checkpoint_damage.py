"""Truncated and bit-flipped checkpoints: refused with one line naming the file by
`vireid-train --resume`, `vireid-eval` and `vireid-prep heatmaps --weights`; a resume falls
back to the previous checkpoint and says so."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.engine.test_trainer import TINY, cache_dir  # noqa: F401 - the module-scoped cache fixture
from tests.fs import flip_byte, one_line
from vireid.cli.evaluate import cli as eval_cli
from vireid.cli.train import cli as train_cli
from vireid.model.checkpoint import load_checkpoint
from vireid.io import previous_path

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _train(cache: Path, out: Path, epochs: int, *extra: str):
    sets = [a for kv in TINY for a in ("--set", kv)]
    return CliRunner().invoke(train_cli, ["--config", str(CONFIGS / "demo.yaml"), "--cache", str(cache), "--out",
                                          str(out), *sets, "--set", f"epochs={epochs}", "--set",
                                          "data.batches_per_epoch=1", "--set", "data.holdout=null", "--no-progress",
                                          *extra])


def _damage(path: Path, how: str) -> None:
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
    else:                                           # one bit in the middle of the file: a tensor's bytes
        flip_byte(path, path.stat().st_size // 2, 0x10)


@pytest.fixture(scope="module")
def run(cache_dir, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("ck") / "run"
    res = _train(cache_dir, out, 2)
    assert res.exit_code == 0, res.output
    assert load_checkpoint(previous_path(out / "last.pt"))["epoch"] == 1      # the epoch before is kept
    return out


def _copy_run(run: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.parametrize("how", ["truncated", "bit-flipped"])
def test_resume_falls_back_to_the_previous_checkpoint(cache_dir, run, tmp_path, how, caplog):  # noqa: F811
    out = _copy_run(run, tmp_path)
    _damage(out / "last.pt", how)
    res = _train(cache_dir, out, 3, "--resume", "auto")
    assert res.exit_code == 0, res.output
    said = [m for m in caplog.messages if "resuming from the previous checkpoint" in m]
    assert said and str(out / "last.pt") in said[0] and "(epoch 1)" in said[0], caplog.messages
    assert "trained 3 epoch(s), 3 steps" in res.output
    assert load_checkpoint(out / "last.pt")["epoch"] == 3
    assert load_checkpoint(previous_path(out / "last.pt"))["epoch"] == 2
    assert (out / "last.damaged.pt").is_file()                # set aside, never the fallback


@pytest.mark.parametrize("how", ["truncated", "bit-flipped"])
def test_resume_without_a_good_previous_checkpoint_is_refused(cache_dir, run, tmp_path, how):  # noqa: F811
    out = _copy_run(run, tmp_path)
    previous_path(out / "last.pt").unlink()
    _damage(out / "last.pt", how)
    res = _train(cache_dir, out, 3, "--resume", "auto")
    assert res.exit_code == 1, repr(res.exception)
    line = one_line(res.output)
    assert str(out / "last.pt") in line and ("damaged" in line or "truncated" in line), line


@pytest.mark.parametrize("how", ["truncated", "bit-flipped"])
def test_evaluation_refuses_a_damaged_checkpoint(cache_dir, run, tmp_path, how):  # noqa: F811
    out = _copy_run(run, tmp_path)
    _damage(out / "last.pt", how)
    res = CliRunner().invoke(eval_cli, ["--checkpoint", str(out / "last.pt"), "--cache", str(cache_dir),
                                        "--trials", "1", "--out", str(tmp_path / "ev"), "--no-progress"])
    assert res.exit_code == 1, repr(res.exception)
    line = one_line(res.output)
    assert str(out / "last.pt") in line and ("damaged" in line or "truncated" in line), line


@pytest.mark.parametrize("how", ["truncated", "bit-flipped"])
def test_heatmaps_refuse_damaged_estimator_weights(tmp_path, how):
    from pipeline.cli import cli as prep_cli
    from pipeline.train_estimator import save_weights
    from tests.data.trees import make_sysu
    from vireid.pose.gccpm import GCCPM

    make_sysu(tmp_path / "SYSU")
    weights = tmp_path / "lip.pt"
    save_weights(GCCPM(num_refinement_stages=1), weights, 64)
    _damage(weights, how)
    res = CliRunner().invoke(prep_cli, ["heatmaps", "--dataset", "sysu", "--root", str(tmp_path / "SYSU"), "--out",
                                        str(tmp_path / "c"), "--weights", str(weights), "--allow-partial",
                                        "--no-progress"])
    assert res.exit_code == 1, repr(res.exception)
    line = one_line(res.output)
    assert str(weights) in line and ("damaged" in line or "truncated" in line), line
