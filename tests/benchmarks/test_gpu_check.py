"""benchmarks/gpu_check.py: the whole check on a CPU with --quick (so it cannot rot before a GPU
host runs it), and its parts: capability guards, failure isolation, ratios."""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch

from tests.benchmarks.scripts import load_script
from tests.subprocs import run_bounded

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gc():
    return load_script("gpu_check")


# ----------------------------------------------------------------------------- parts
def test_cuda_only_modes_are_skipped_with_a_reason(gc, monkeypatch):
    modes = gc.MODES
    assert gc.mode_skip_reason(modes["float32"], "cpu") is None
    for name in ("bf16", "fp16", "float32 + channels_last", "bf16 + channels_last + compile"):
        assert "needs CUDA" in gc.mode_skip_reason(modes[name], "cpu"), name
    # a GPU without bfloat16 and a torch without triton (no GPU needed to ask)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (7, 0))
    monkeypatch.setattr(gc, "has_triton", lambda: False)
    assert "no bfloat16 (compute capability 7.0)" in gc.mode_skip_reason(modes["bf16"], "cuda")
    assert gc.mode_skip_reason(modes["fp16"], "cuda") is None
    assert "needs triton" in gc.mode_skip_reason(("fp16", True, True), "cuda")
    assert gc.default_mode("cuda") == "fp16 + channels_last" and gc.default_mode("cpu") == "float32"
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: False)
    assert "no NCCL" in gc.ddp_skip_reason("cuda")


def test_a_failing_check_is_a_row_and_the_rest_goes_on(gc, tmp_path, monkeypatch):
    def boom(spec):
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")
    monkeypatch.setitem(gc.JOBS, "train", boom)
    (row,) = gc.run_job("train", {"section": "train", "name": "fp16"}, False, 10, tmp_path / "log")
    assert (row["section"], row["check"], row["status"]) == ("train", "fp16", "failed")
    assert row["reason"] == "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB"
    # a child that dies, and one that hangs: a failed row each, the hung one killed with its group
    spec = {"section": "eval", "name": "eval"}
    (row,) = gc.run_child([sys.executable, "-c", "print('segfault-ish'); raise SystemExit(3)"], 60, tmp_path / "a", spec)
    assert row["status"] == "failed" and row["reason"].startswith("exit status 3") and "segfault-ish" in row["reason"]
    pid_file = tmp_path / "pid"
    hang = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    (row,) = gc.run_child([sys.executable, "-c", hang], 3, tmp_path / "b", {"section": "train", "name": "compile"})
    assert row["status"] == "failed" and "did not finish within 3 s" in row["reason"]
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_a_worker_prints_its_rows_and_the_parent_reads_them(gc, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(gc.JOBS, "eval", lambda spec: [gc.row("eval", spec["name"], seconds=1.5)])
    monkeypatch.setattr(gc.signal, "alarm", lambda s: None)
    assert gc.main(["--_worker", json.dumps(["eval", {"section": "eval", "name": "metrics"}, 60])]) == 0
    out = capsys.readouterr().out
    (log := tmp_path / "child.log").write_text("noise\n" + out)
    (row,) = gc.run_child([sys.executable, "-c", f"print(open({str(log)!r}).read())"], 60, tmp_path / "c",
                          {"section": "eval", "name": "metrics"})
    assert row["check"] == "metrics" and row["figures"] == {"seconds": 1.5} and row["status"] == "ok"


def test_ratios_are_against_the_rows_they_name(gc):
    row = gc.row
    rows = [row("train", "float32", images_per_s=100.0, peak_memory_mib=2000.0),
            row("train", "bf16 + channels_last", images_per_s=250.0, peak_memory_mib=1200.0),
            row("train", "fp16", "skipped", "no"),
            row("ddp", "torchrun 1 process(es), nccl", images_per_s=240.0),
            row("loader", "4 workers", data_wait_share=0.25, loader_over_model=0.8),
            row("eval", "metrics multi-shot", seconds=0.5, speedup=21.0),
            row("train", "bf16 + channels_last + grad_every=1", images_per_s=200.0, peak_memory_mib=1300.0)]
    gc.add_ratios(rows, "bf16 + channels_last")
    assert rows[6]["figures"]["vs_without_grad_share"] == pytest.approx(0.8)
    assert rows[6]["ratio"] == "0.80x bf16 + channels_last without the gradient shares"
    assert rows[1]["figures"]["vs_float32"] == pytest.approx(2.5)
    assert rows[1]["figures"]["memory_vs_float32"] == pytest.approx(0.6)
    assert rows[1]["ratio"] == "2.50x float32 (memory 0.60x)" and rows[1]["result"] == "250.0 img/s"
    assert rows[2]["result"] == "skipped: no" and rows[2]["figures"] == {}
    assert rows[3]["figures"]["vs_one_process"] == pytest.approx(0.96)
    assert rows[4]["result"] == "25.0% of a step waits for data"
    assert rows[5]["ratio"] == "21.0x the per-query loop"
    # on a CPU the default mode is float32: the gradient-share row is still against its own mode
    rows = [row("train", "float32", images_per_s=100.0, peak_memory_mib=1.0),
            row("train", "float32 + grad_every=1", images_per_s=50.0, peak_memory_mib=1.0)]
    gc.add_ratios(rows, "float32")
    assert rows[0]["ratio"] == "1.00x float32 (memory 1.00x)"
    assert rows[1]["ratio"] == "0.50x float32 without the gradient shares"


def test_bad_arguments_are_one_line_errors(gc, capsys):
    cases = [(["--device", "cpu", "--only", "train,gpus"], "unknown section(s) gpus"),
             (["--device", "cpu", "--workers", "-1"], "worker counts must be >= 0"),
             (["--device", "cpu", "--ddp-procs", "0"], "--ddp-procs: between 1 and 64")]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "CUDA is not available here"))
    for args, words in cases:
        with pytest.raises(SystemExit) as exc:
            gc.main(args)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and words in err.splitlines()[-1], err


# ----------------------------------------------------------------------------- the whole check
@pytest.mark.slow
def test_quick_cpu_run_measures_every_section(tmp_path):
    out = tmp_path / "check.json"
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    returncode, stdout, stderr = run_bounded(cmd, 300, "gpu_check --quick", cwd=tmp_path, env=env)
    assert returncode == 0, stdout[-3000:] + stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["quick"] is True and data["host"]["device"] == "cpu" and data["host"]["torch_threads"] == 1
    sections = data["sections"]
    assert list(sections) == ["train", "loader", "heatmaps", "eval", "ddp"]
    for name, rows in sections.items():
        ok = [r for r in rows if r["status"] == "ok"]
        assert ok, f"{name}: no measured row: {rows}"
        for r in ok:
            assert r["figures"] and all(isinstance(v, (int, float)) and math.isfinite(v) for v in
                                        r["figures"].values()), r
        assert not [r for r in rows if r["status"] == "failed"], rows
    train = {r["check"]: r for r in sections["train"]}
    assert train["float32"]["status"] == "ok" and train["float32"]["figures"]["vs_float32"] == 1.0
    for name in ("bf16", "fp16", "float32 + channels_last", "bf16 + channels_last + compile"):
        assert train[name]["status"] == "skipped" and "needs CUDA" in train[name]["reason"], name
    eval_rows = {r["check"]: r["figures"] for r in sections["eval"]}
    assert eval_rows["feature extraction"]["images"] > 0 and eval_rows["metrics single-shot"]["speedup"] > 1
    (ddp,) = sections["ddp"]
    assert "gloo" in ddp["check"] and ddp["figures"]["processes"] == 1
    assert "world size 1" in ddp["details"] and "SyncBatchNorm (falls back to BatchNorm)" in ddp["details"]
    assert "note on the ddp row: world size 1" in stdout
    shares = train["float32 + grad_every=1"]
    assert shares["status"] == "ok" and shares["figures"]["vs_without_grad_share"] > 0
    # the DDP run computed the single-process run's losses (same data, seed and steps)
    assert ddp["figures"]["loss_total"] == pytest.approx(train["float32"]["figures"]["loss_total"], rel=1e-5)
    heat = {r["check"]: r["figures"] for r in sections["heatmaps"]}
    assert heat["batch 8"]["ratio"] == pytest.approx(heat["batch 8"]["job_images_per_s"] /
                                                     heat["batch 8"]["forward_images_per_s"])
    for s in ("| train | float32 |", "| loader |", "| heatmaps | best batch |", "| eval | metrics single-shot |",
              "| ddp | torchrun 1 process(es), gloo |"):
        assert s in stdout, s
    assert data["table"] in stdout
