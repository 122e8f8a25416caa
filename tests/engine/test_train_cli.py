"""vireid-train through click's CliRunner: help, one-line user errors, a one-step run."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.engine.test_trainer import TINY, cache_dir  # noqa: F401 - the module-scoped cache fixture
from vireid.cli.train import cli
from vireid.model.checkpoint import load_checkpoint

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _args(cache: Path, out: Path, *extra: str):
    return ["--config", str(CONFIGS / "demo.yaml"), "--cache", str(cache), "--out", str(out), *extra]


def _one_line(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_help_explains_the_options():
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    for word in ("--config", "--cache", "--out", "--trial", "--resume", "--set", "--device", "KEY=VALUE",
                 "last.pt", "best.pt", "log.jsonl"):
        assert word in res.output, word


def test_unknown_key_is_one_line_and_fails(cache_dir, tmp_path):  # noqa: F811
    res = CliRunner().invoke(cli, _args(cache_dir, tmp_path / "run", "--set", "optim.lrr=0.1"))
    assert res.exit_code == 1
    line = _one_line(res.output)
    assert "unknown key 'optim.lrr'" in line and "did you mean 'optim.lr'" in line
    res = CliRunner().invoke(cli, _args(cache_dir, tmp_path / "run", "model.backbon=resnet18"))
    assert res.exit_code == 1 and "unknown key 'model.backbon'" in _one_line(res.output)
    assert not (tmp_path / "run").exists()


def test_user_errors_exit_without_traceback(cache_dir, tmp_path):  # noqa: F811
    res = CliRunner().invoke(cli, _args(cache_dir, tmp_path / "run", "--resume", str(tmp_path / "nope.pt")))
    assert res.exit_code == 1 and "input_size 96x48 differs from the configured data.input_size 128x64" in \
        _one_line(res.output)
    res = CliRunner().invoke(cli, _args(cache_dir, tmp_path / "run", *TINY, "--resume", str(tmp_path / "nope.pt")))
    assert res.exit_code == 1 and "nope.pt: checkpoint not found" in _one_line(res.output)
    res = CliRunner().invoke(cli, _args(tmp_path / "no-cache", tmp_path / "run"))
    assert res.exit_code == 1 and "not a heatmap cache" in _one_line(res.output)
    res = CliRunner().invoke(cli, _args(cache_dir, tmp_path / "run", "--trial", "3"))       # demo is SYSU
    assert res.exit_code == 1 and "applies to RegDB only" in _one_line(res.output)
    res = CliRunner().invoke(cli, ["--cache", str(cache_dir)])
    assert res.exit_code == 2 and "--config" in res.output


def test_short_run_prints_where_the_outputs_are(cache_dir, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    sets = [a for kv in TINY for a in ("--set", kv)]
    res = CliRunner().invoke(cli, _args(cache_dir, out, *sets, "epochs=1", "data.batches_per_epoch=1",
                                        "data.holdout=null", "--device", "cpu", "--no-progress"))
    assert res.exit_code == 0, res.output
    assert f"checkpoint: {out / 'last.pt'}" in res.output and str(out / "losses.png") in res.output
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    res = CliRunner().invoke(cli, _args(cache_dir, out, *sets, "epochs=2", "data.batches_per_epoch=1",
                                        "data.holdout=null", "--resume", "auto"))
    assert res.exit_code == 0, res.output
    assert "trained 2 epoch(s), 2 steps" in res.output


def test_device_and_progress_options_set_the_dataclass_not_overrides(cache_dir, tmp_path, monkeypatch):  # noqa: F811
    """--device / --progress are applied to the loaded TrainConfig (dataclasses.replace), never
    turned back into KEY=VALUE text for the YAML parser."""
    import vireid.engine.config as config_module
    import vireid.engine.trainer as trainer_module
    from vireid.engine.errors import TrainError

    seen = {}
    real_load = config_module.load_config

    def load(path, overrides=()):
        seen["overrides"] = list(overrides)
        return real_load(path, overrides)

    def train(config, *args, **kwargs):
        seen["config"] = config
        raise TrainError("stopped by the test")

    monkeypatch.setattr(config_module, "load_config", load)
    monkeypatch.setattr(trainer_module, "train", train)
    res = CliRunner().invoke(cli, _args(cache_dir, tmp_path / "run", "--set", "epochs=1", "--device", "cpu",
                                        "--no-progress"))
    assert res.exit_code == 1 and "stopped by the test" in res.output
    assert seen["overrides"] == ["epochs=1"]
    assert (seen["config"].device, seen["config"].progress, seen["config"].epochs) == ("cpu", False, 1)
    res = CliRunner().invoke(cli, _args(cache_dir, tmp_path / "run", "--device", "gpu"))
    assert res.exit_code == 1 and "--device gpu: device must be auto, cpu, cuda or cuda:N" in _one_line(res.output)


def test_evaluate_after_training_runs_the_test_protocol(cache_dir, tmp_path, monkeypatch):  # noqa: F811
    import json

    import vireid.cli.evaluate as eval_cli
    import vireid.evaluation.run as evaluate_module

    # the evaluation is a function call with typed options, not vireid-eval's command line
    def no_click(*args, **kwargs):
        raise AssertionError("vireid-train ran vireid-eval's click command")

    calls = []
    real = evaluate_module.evaluate_checkpoint

    def spy(checkpoint, cache, options, **kwargs):
        calls.append(options)
        return real(checkpoint, cache, options, **kwargs)

    monkeypatch.setattr(eval_cli.cli, "main", no_click)
    monkeypatch.setattr(evaluate_module, "evaluate_checkpoint", spy)
    out = tmp_path / "run"
    sets = [a for kv in TINY for a in ("--set", kv)]
    res = CliRunner().invoke(cli, _args(cache_dir, out, *sets, "epochs=1", "data.batches_per_epoch=1",
                                        "data.holdout=null", "--device", "cpu", "--no-progress",
                                        "--evaluate", "single"))
    assert res.exit_code == 0, res.output
    assert f"evaluating {out / 'last.pt'} on the test split (sysu, single-shot)" in res.output
    results = json.loads((out / "eval" / "results.json").read_text())
    assert results["checkpoint"]["path"].endswith("last.pt"), results["checkpoint"]
    text = json.dumps(results)
    assert "sysu/all/single" in text and "sysu/indoor/single" in text
    assert (out / "eval" / "results.md").is_file() and (out / "eval" / "cmc.png").is_file()
    (options,) = calls
    assert isinstance(options, evaluate_module.EvalOptions)
    assert (options.device, options.progress, options.shot, options.trial) == ("cpu", False, "single", None)


def test_torchrun_two_processes_through_the_cli(cache_dir, tmp_path):  # noqa: F811
    """The real launcher: torchrun --nproc-per-node 2 on the CPU (gloo), with hold-out validation
    on rank 0; only rank 0 prints and writes the run folder."""
    import os
    import sys

    from tests.engine.test_distributed import _free_port
    from tests.subprocs import run_bounded

    out = tmp_path / "run"
    sets = [a for kv in TINY for a in ("--set", kv)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "-m", "vireid.cli.train", *_args(cache_dir, out, *sets, "epochs=2", "data.batches_per_epoch=1",
                                            "data.holdout=val", "val_every=1")]
    cmd += ["--set", "ddp.timeout_minutes=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(CONFIGS.parent)}
    returncode, stdout, stderr = run_bounded(cmd, 180, "torchrun", env=env)
    assert returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert stdout.count("trained 2 epoch(s), 2 steps") == 1, stdout
    ck = load_checkpoint(out / "last.pt")
    assert ck["world_size"] == 2 and ck["epoch"] == 2 and (out / "best.pt").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "config.yaml", "last.prev.pt", "last.pt", "log.jsonl",
                                                     "losses.png", "val.png"]


def test_read_only_run_folder_is_one_line_before_any_work(cache_dir, tmp_path, monkeypatch):  # noqa: F811
    """Drill (issue 21): with a read-only --out, vireid-train died with a PermissionError traceback."""
    import vireid.engine.trainer as trainer_mod
    from tests.fs import read_only

    def refuse(*args, **kwargs):
        raise AssertionError("training started although the run folder is not writable")

    monkeypatch.setattr(trainer_mod, "_train", refuse)
    sets = [a for kv in TINY for a in ("--set", kv)]
    for sub in ("", "run"):
        with read_only(tmp_path / "ro") as ro:
            res = CliRunner().invoke(cli, _args(cache_dir, ro / sub, *sets, "epochs=1", "--no-progress"))
        assert res.exit_code == 1, repr(res.exception)
        line = _one_line(res.output)
        assert str(ro / sub) in line and "not writable" in line


def test_missing_config_is_one_line(cache_dir, tmp_path):  # noqa: F811
    res = CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.yaml"), "--cache", str(cache_dir), "--out",
                                   str(tmp_path / "run")])
    assert res.exit_code == 1 and str(tmp_path / "nope.yaml") in _one_line(res.output)


def test_full_disk_keeps_the_last_good_checkpoint(cache_dir, tmp_path, monkeypatch):  # noqa: F811
    """Issue 16: a full disk while epoch 2's last.pt is written: one line naming it, epoch 1's intact."""
    from tests.fs import disk_full

    out = tmp_path / "run"
    sets = [a for kv in TINY for a in ("--set", kv)]
    disk_full(monkeypatch, after=2)                  # config.yaml and epoch 1's last.pt; then last.pt fails
    res = CliRunner().invoke(cli, _args(cache_dir, out, *sets, "epochs=2", "data.batches_per_epoch=1",
                                        "data.holdout=null", "--no-progress"))
    assert res.exit_code == 1, repr(res.exception)
    assert _one_line(res.output) == f"Error: {out / 'last.pt'}: cannot write: no space left on the device"
    monkeypatch.undo()
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert not list(out.glob(".*tmp*")) and not (out / "last.prev.pt").exists()


def test_paper_presets_refuse_to_start_without_pose_init(cache_dir, tmp_path):  # noqa: F811
    for preset in ("sysu.yaml", "regdb.yaml", "sysu_release.yaml"):
        res = CliRunner().invoke(cli, ["--config", str(CONFIGS / preset), "--cache", str(cache_dir),
                                       "--out", str(tmp_path / "run"), "device=cpu"])
        assert res.exit_code == 1, res.output
        line = _one_line(res.output)
        assert "model.pose_init is required" in line and "--set model.pose_init=PATH" in line, line
        assert not (tmp_path / "run").exists()
