"""Every command and script defaults to ``--device auto`` (CUDA where there is one, issue 26):
none silently runs a GPU-sized job on the CPU. vireid-train and vireid-regdb default to the
configuration's device, which the presets set to auto."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.parse_only import click_command, console_scripts, parse_argparse_script
from vireid.engine.config import load_config

REPO = Path(__file__).resolve().parents[1]


def _device_option(command, path=()):
    for name in path:
        command = command.commands[name]
    return next(p for p in command.params if p.name == "device")


@pytest.mark.parametrize("script,path", [
    ("vireid-prep", ("heatmaps",)), ("vireid-prep", ("train-estimator",)), ("vireid-eval", ()),
    ("vireid-gradcam", ()), ("vireid-extract", ()), ("vireid-search", ())])
def test_click_commands_default_to_auto(script, path):
    option = _device_option(click_command(console_scripts()[script]), path)
    assert option.default == "auto", (script, path, option.default)
    assert "auto" in option.help


def test_train_and_regdb_take_the_configs_device_which_is_auto():
    for script in ("vireid-train", "vireid-regdb"):
        assert _device_option(click_command(console_scripts()[script])).default is None
    for name in ("sysu.yaml", "regdb.yaml", "sysu_release.yaml", "regdb_release.yaml"):
        assert load_config(REPO / "configs" / name).device == "auto", name


@pytest.mark.parametrize("script,args", [
    ("ablation.py", ["--cache", "c", "--out", "o"]), ("bench_model.py", []), ("bench_heatmaps.py", []),
    ("bench_train.py", []), ("gpu_check.py", [])])
def test_benchmark_scripts_default_to_auto(script, args):
    assert parse_argparse_script(REPO / "benchmarks" / script, args).device == "auto"


def test_a_device_that_cannot_run_is_one_line_from_the_one_resolver(tmp_path):
    """vireid-eval and vireid-prep heatmaps resolve --device through one function
    (vireid.cli.options.resolve_device_option), so a device that cannot run reads the same."""
    import click
    from click.testing import CliRunner

    from pipeline.cli import cli as prep
    from vireid.cli.evaluate import cli as evaluate
    from vireid.cli.options import resolve_device_option

    with pytest.raises(click.ClickException) as caught:
        resolve_device_option("gpu0")
    expected = f"Error: {caught.value.message}"
    assert expected.startswith("Error: --device: device 'gpu0'")
    runs = [CliRunner().invoke(evaluate, ["--checkpoint", str(tmp_path / "last.pt"), "--cache", str(tmp_path),
                                          "--device", "gpu0"]),
            CliRunner().invoke(prep, ["heatmaps", "--dataset", "sysu", "--root", str(tmp_path), "--out",
                                      str(tmp_path / "c"), "--estimator", "keypoints", "--device", "gpu0"])]
    for res in runs:
        assert res.exit_code == 1 and [ln for ln in res.output.splitlines() if ln.strip()] == [expected], res.output
