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
from tests.pipeline.test_heatmaps import dataset  # noqa: F401 - the tree fixture


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


# ---------------------------------------------------------------- heatmaps: --config FILE and KEY=VALUE
def _heatmaps(root, out, *extra):
    return CliRunner().invoke(cli, ["heatmaps", "--dataset", "sysu", "--root", str(root), "--out", str(out),
                                    "--estimator", "keypoints", "--no-progress", *extra])


def test_heatmaps_settings_from_config_file_overrides_and_options(dataset, tmp_path):  # noqa: F811
    root, manifest = dataset
    manifest.save(tmp_path / "m.json")
    (tmp_path / "base.yaml").write_text("input_size: [32, 16]\nsigma: 2.0\nshard_size: 10\n")
    (tmp_path / "cache.yaml").write_text("inherit: base.yaml\nstride: 8\nimage_format: jpeg\n")
    # file < KEY=VALUE < option: the file's stride 8 and jpeg stay, sigma 2 -> 3 -> 2.5, quality 90
    res = _heatmaps(root, tmp_path / "c", "--manifest", str(tmp_path / "m.json"), "--config",
                    str(tmp_path / "cache.yaml"), "--sigma", "2.5", "sigma=3", "jpeg_quality=90")
    assert res.exit_code == 0, res.output
    attrs = json.loads((tmp_path / "c" / "cache.json").read_text())
    assert (attrs["input_size"], attrs["stride"], attrs["heatmap_size"], attrs["sigma"], attrs["image_format"],
            attrs["jpeg_quality"], attrs["shard_size"]) == ([32, 16], 8, [4, 2], 2.5, "jpeg", 90, 10)


def test_heatmaps_options_alone_keep_their_dataclass_defaults(tmp_path):
    from vireid.cache.format import CacheConfig

    res = run("heatmaps", "--help")
    default = CacheConfig()
    for shown in (f"[default: {default.input_size[0]}x{default.input_size[1]}]", f"[default: {default.stride}]",
                  f"[default: {default.sigma}]", f"[default: {default.shard_size}]"):
        assert shown in res.output, shown


def test_heatmaps_input_size_is_a_tuple_from_the_dataclass_converted_once():
    """--input-size: the dataclass's tuple is the default as it is (no "288x144" text turned back
    into a tuple); the command line's HxW text is converted once, by the option's type."""
    from pipeline.cli import SizeType
    from vireid.cache.format import CacheConfig

    option = next(p for p in cli.commands["heatmaps"].params if p.name == "input_size")
    assert isinstance(option.type, SizeType) and option.default == CacheConfig().input_size
    assert isinstance(option.default, tuple)
    assert option.type.convert("32x16", option, None) == (32, 16)
    assert option.type.convert((32, 16), option, None) == (32, 16)


def test_heatmaps_bad_settings_are_one_line_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sigm: 3\n")
    out = tmp_path / "c"
    cases = [
        (["sigm=3"], "Error: override 'sigm=3': unknown key 'sigm'; did you mean 'sigma'?"),
        (["--config", str(bad)], f"Error: {bad}: unknown key 'sigm'; did you mean 'sigma'?"),
        (["shard_size=many"], "Error: override 'shard_size=many': shard_size must be an integer, got 'many'"),
        (["--input-size", "30x16"], "Error: --input-size 30x16: input size 30x16 is not a positive multiple of the "
                                    "stride 4"),
        (["stride=8", "--input-size", "36x16"], "Error: override 'stride=8', --input-size 36x16: input size 36x16 "
                                                "is not a positive multiple of the stride 8"),
        (["--config", str(tmp_path / "none.yaml")], f"Error: {tmp_path / 'none.yaml'}: configuration file not found"),
    ]
    for extra, line in cases:
        res = _heatmaps(tmp_path / "no-root", out, *extra)
        assert res.exit_code == 1, (extra, res.output)
        assert [ln for ln in res.output.splitlines() if ln.strip()] == [line], extra
    assert not out.exists()                      # refused before anything was touched
