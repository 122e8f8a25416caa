"""vireid-regdb / run_regdb_trials: Table II over RegDB trials, both directions, on a tiny
synthetic RegDB cache (checkpoints given, and trained per trial)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tests.engine.test_eval_cli import _cache, _checkpoint
from tests.engine.test_trainer import TINY
from vireid.cli.regdb import cli
from vireid.experiments import regdb_trials
from vireid.engine.config import load_config
from vireid.experiments.regdb_trials import METRICS, SETTINGS, run_regdb_trials, summarise


@pytest.fixture(scope="module")
def regdb(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regdb")
    manifest = _cache(tmp / "RegDB", "regdb", tmp / "cache", ids=6, images_per_camera=2)
    for t in (1, 2, 3):
        _checkpoint(tmp / f"run{t}" / "last.pt", manifest, "regdb", trial=t)
    return tmp, manifest


def _one_line(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def test_checkpoints_give_mean_and_std_over_trials(regdb, tmp_path, monkeypatch):
    tmp, _ = regdb
    out = tmp_path / "t2"
    res = CliRunner().invoke(cli, ["--checkpoints", str(tmp / "run{trial}" / "last.pt"), "--cache", str(tmp / "cache"),
                                   "--out", str(out), "--trials", "1-3", "--no-progress"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "table2.json").read_text())
    assert doc["trials"] == [1, 2, 3] and set(doc["summary"]) == set(SETTINGS)
    for setting in SETTINGS:
        for feat in ("f_ID", "f_ALL"):
            per = [json.loads((out / f"trial{t}" / "eval" / "results.json").read_text())
                   ["results"][setting]["features"][feat]["mean"] for t in (1, 2, 3)]
            for t, vals in zip((1, 2, 3), per):
                trial_doc = json.loads((out / f"trial{t}" / "eval" / "results.json").read_text())
                assert trial_doc["results"][setting]["trials"] == [t]          # each on its own trial
            for m in METRICS:
                values = np.array([p[m] for p in per])
                assert doc["summary"][setting][feat]["mean"][m] == pytest.approx(values.mean())
                assert doc["summary"][setting][feat]["std"][m] == pytest.approx(values.std())
    md = (out / "table2.md").read_text()
    assert "Visible-to-Thermal mAP" in md and "Thermal-to-Visible R1" in md and " +- " in md
    assert md in res.output

    # a rerun reuses each trial's results (same checkpoint bytes) and evaluates nothing
    def no_eval(*a, **k):
        raise AssertionError("evaluated again")
    monkeypatch.setattr(regdb_trials, "evaluate_model", no_eval)
    again = run_regdb_trials(tmp / "cache", out, checkpoints=str(tmp / "run{trial}" / "last.pt"), trials=[1, 2, 3])
    assert again.markdown == md and set(again.per_trial) == {1, 2, 3}


def test_summarise_by_hand():
    def res(v):
        block = {"mean": {m: v for m in METRICS}}
        return {SETTINGS[0]: {"features": {"f_ID": block}}}
    s = summarise({1: res(0.2), 2: res(0.4), 3: res(0.9)})
    assert s[SETTINGS[0]]["f_ID"]["mean"]["mAP"] == pytest.approx(0.5)
    assert s[SETTINGS[0]]["f_ID"]["std"]["R1"] == pytest.approx(np.sqrt(((0.3 ** 2) + (0.1 ** 2) + (0.4 ** 2)) / 3))


def test_user_errors_are_one_line(regdb, tmp_path):
    tmp, _ = regdb
    base = ["--cache", str(tmp / "cache"), "--out", str(tmp_path / "o"), "--no-progress"]
    res = CliRunner().invoke(cli, ["--checkpoints", str(tmp / "run{trial}" / "last.pt"), "--trials", "1-4", *base])
    assert res.exit_code == 1 and "checkpoint not found" in _one_line(res.output) and "run4" in res.output
    res = CliRunner().invoke(cli, ["--checkpoints", str(tmp / "run1" / "last.pt"), "--trials", "1,2", *base])
    assert res.exit_code == 1 and "'{trial}'" in _one_line(res.output)
    (tmp_path / "wrong2").mkdir()
    (tmp_path / "wrong2" / "last.pt").write_bytes((tmp / "run3" / "last.pt").read_bytes())
    res = CliRunner().invoke(cli, ["--checkpoints", str(tmp_path / "wrong{trial}" / "last.pt"), "--trials", "2", *base])
    assert res.exit_code == 1 and "trained on RegDB trial 3, not trial 2" in _one_line(res.output)
    res = CliRunner().invoke(cli, ["--checkpoints", str(tmp / "run{trial}" / "last.pt"), "--trials", "0-2", *base])
    assert res.exit_code == 1 and "1..10" in _one_line(res.output)
    res = CliRunner().invoke(cli, base)
    assert res.exit_code == 2 and "--config" in res.output
    res = CliRunner().invoke(cli, ["--checkpoints", "x{trial}", "--set", "epochs=1", *base])
    assert res.exit_code == 2 and "needs --config" in res.output
    res = CliRunner().invoke(cli, ["--checkpoints", "x{trial}", "--trials", "a-b", *base])
    assert res.exit_code == 2 and "--trials" in res.output


def test_trains_each_trial_then_evaluates(regdb, tmp_path):
    tmp, _ = regdb
    cfg = load_config(None, TINY + ["dataset=regdb", "epochs=1", "data.batches_per_epoch=1"])
    out = tmp_path / "trained"
    result = run_regdb_trials(tmp / "cache", out, config=cfg, trials=[1, 2])
    for t in (1, 2):
        ck = out / f"trial{t}" / "last.pt"
        assert ck.is_file() and result.checkpoints[t] == str(ck)
        assert (out / f"trial{t}" / "eval" / "results.json").is_file()
    assert (out / "table2.md").is_file() and set(result.per_trial) == {1, 2}
    from vireid.model.checkpoint import load_checkpoint
    assert [load_checkpoint(out / f"trial{t}" / "last.pt")["trial"] for t in (1, 2)] == [1, 2]
