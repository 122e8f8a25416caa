"""benchmarks/full_scale.py: the plan has SYSU-MM01's real counts at scale 1, and the whole
rehearsal runs at a tiny scale, printing a row for every stage."""
from __future__ import annotations

import os
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.benchmarks.scripts import load_script
from tests.subprocs import run_bounded

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "full_scale.py"


@pytest.fixture(scope="module")
def fs():
    return load_script("full_scale")


def test_sysu_plan_has_the_real_counts(fs):
    lists, plan = fs.sysu_plan(1.0, seed=0)
    assert {k: len(v) for k, v in lists.items()} == {"train": 296, "val": 99, "test": 96}
    group = {pid: "test" if s == "test" else "trainval" for s, ids in lists.items() for pid in ids}
    counts = Counter((group[pid], "ir" if cam in ("cam3", "cam6") else "rgb") for _, pid, cam, _ in plan)
    assert counts == {("trainval", "rgb"): 22258, ("trainval", "ir"): 11909, ("test", "rgb"): 7813,
                      ("test", "ir"): 3803}
    assert len(set(plan)) == len(plan) == 30071 + 11909 + 3803
    per_id = {}
    for _, pid, cam, _ in plan:
        per_id.setdefault(pid, set()).add(cam)
    assert len(per_id) == 491                                  # every listed id has images
    assert all(cams & {"cam3", "cam6"} and cams - {"cam3", "cam6"} for cams in per_id.values())


def test_bad_scale_is_one_line_error(fs, capsys):
    with pytest.raises(SystemExit):
        fs.parse(["--work", "/tmp/x", "--scale", "0"])
    assert "--scale must be in (0, 1]" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_rehearsal_prints_every_stage(fs, tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--work", str(tmp_path / "work"), "--scale", "0.01", "--steps", "2",
           "--input-size", "96x32", "--image-size", "128x64", "--eval-batch-size", "16"]
    for s in ("model.backbone=resnet18", "model.stripe_dim=32", "model.teacher_dim=64", "data.num_ids=2",
              "data.num_per_modality=2", "data.workers=0"):
        cmd += ["--train-set", s]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    rc, out, err = run_bounded(cmd, 1200, "full_scale.py --scale 0.01", env=env, cwd=REPO)
    assert rc == 0, out[-3000:] + err[-3000:]
    size = r"([\d.]+) (B|KiB|MiB|GiB)"
    row = rf"^\| ([a-z-]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| {size} \| {size} \|$"
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(row, out, re.M)}
    assert list(rows) == list(fs.STAGES), out
    for stage, (wall, cpu, rate, rss, rss_unit, _, _) in rows.items():
        assert float(wall) > 0 and float(cpu) > 0 and float(rss) > 0, stage
        assert float(rate) > 0, stage
    assert "stages over 8 GiB peak RSS: none" in out
    assert re.search(r"sysu: cache .* = [\d.]+x the raw images'", out)
    assert re.search(r"must sustain [\d.]+ training images/s to finish in 12 hours", out)
    assert not (tmp_path / "work").exists()                    # removed without --keep
