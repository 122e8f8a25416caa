"""The loss-weight sweep (Fig. 5): one run per value, only that key differs, table and curves."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.test_trainer import TINY, cache_dir  # noqa: F401 - the module-scoped cache fixture
from vireid.model.checkpoint import load_checkpoint
from vireid.evaluation.testing import EvalOptions
from vireid.experiments.sweep import parse_values, run_sweep, sweep_rows

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_rows_and_values():
    rows = sweep_rows("loss.lambda_pose", ["0", "5"])
    assert [r.name for r in rows] == ["loss.lambda_pose=0", "loss.lambda_pose=5"]
    assert [r.overrides for r in rows] == [("loss.lambda_pose=0",), ("loss.lambda_pose=5",)]
    assert rows[0].slug == "lambda_pose=0"
    assert parse_values("0, 1,5") == ["0", "1", "5"] and parse_values('["mean", 2]') == ["mean", "2"]
    with pytest.raises(ValueError, match="distinct"):
        sweep_rows("loss.beta", ["1", "1"])


def test_sweep_trains_one_run_per_value(cache_dir, tmp_path):  # noqa: F811
    sets = TINY + ["epochs=2", "data.batches_per_epoch=1", "data.holdout=fraction", "data.holdout_fraction=0.34",
                   "val_every=1"]
    out = tmp_path / "sweep"
    res = run_sweep(CONFIGS / "demo.yaml", cache_dir, out, "loss.lambda_pose", ["0", "10"], overrides=sets,
                    options=EvalOptions(mode="all", trials=1))
    assert list(res.rows) == ["loss.lambda_pose=0", "loss.lambda_pose=10"]
    a, b = (load_checkpoint(out / s / "last.pt")["config"] for s in ("lambda_pose=0", "lambda_pose=10"))
    assert (a["loss"]["lambda_pose"], b["loss"]["lambda_pose"]) == (0.0, 10.0)
    a["loss"].pop("lambda_pose"), b["loss"].pop("lambda_pose")
    assert a == b                                                   # nothing else differs
    doc = json.loads((out / "sweep.json").read_text())
    assert [r["name"] for r in doc["rows"]] == list(res.rows)
    md = (out / "sweep.md").read_text()
    assert "| loss.lambda_pose=10 |" in md and "f_ALL mAP" in md
    assert (out / "sweep.png").stat().st_size > 1000
