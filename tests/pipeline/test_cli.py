"""vireid-prep: help texts, one-line errors, manifest written atomically."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import cli
from vireid.data.manifest import Manifest
from tests.data.trees import make_sysu


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_explains_every_command():
    res = run("--help")
    assert res.exit_code == 0
    for cmd in ("manifest", "synth", "heatmaps", "verify", "show", "train-estimator"):
        assert cmd in res.output
        sub = run(cmd, "--help")
        assert sub.exit_code == 0 and ("--out" in sub.output or "--manifest" in sub.output), cmd
    assert "--allow-partial" in run("manifest", "--help").output


def test_console_script_wrong_root_is_one_line(tmp_path):
    exe = Path(sys.executable).with_name("vireid-prep")
    res = subprocess.run([str(exe), "manifest", "--dataset", "sysu", "--root", str(tmp_path / "nope"),
                          "--out", str(tmp_path / "m.json")], capture_output=True, text=True)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not a directory" in lines[0] and "nope" in lines[0]


def test_unknown_dataset_rejected(tmp_path):
    res = run("manifest", "--dataset", "market", "--root", str(tmp_path), "--out", str(tmp_path / "m.json"))
    assert res.exit_code == 2 and "'market' is not one of" in res.output


def test_manifest_real_sizes_need_allow_partial(tmp_path):
    make_sysu(tmp_path / "s")
    out = tmp_path / "m.json"
    res = run("manifest", "--dataset", "sysu", "--root", str(tmp_path / "s"), "--out", str(out), "--no-progress")
    assert res.exit_code == 1 and "count-mismatch" in res.output and "--allow-partial" in res.output
    assert not out.exists()                       # nothing written on failure
    res = run("manifest", "--dataset", "sysu", "--root", str(tmp_path / "s"), "--out", str(out), "--no-progress",
              "--allow-partial")
    assert res.exit_code == 0, res.output
    m = Manifest.load(out)
    assert m.partial and len(m.records) == 52
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temp file left


def test_synth_marker_sizes_are_checked_strictly(tmp_path):
    spec = make_sysu(tmp_path / "s")
    marker = {"layout": "sysu", "expected": dict(spec.expected)}
    (tmp_path / "s" / "vireid_synth.json").write_text(json.dumps(marker))
    out = tmp_path / "m.json"
    res = run("manifest", "--dataset", "sysu", "--root", str(tmp_path / "s"), "--out", str(out), "--no-progress")
    assert res.exit_code == 0, res.output
    assert not Manifest.load(out).partial
    os.remove(tmp_path / "s" / "cam3" / "0007" / "0001.jpg")      # a lost file is caught by the sizes
    res = run("manifest", "--dataset", "sysu", "--root", str(tmp_path / "s"), "--out", str(out), "--no-progress")
    assert res.exit_code == 1 and "IR images: found 23, the dataset has 24" in res.output
