"""The presets ship with the package and are found by name as well as by path."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vireid.cli.train import cli as train_cli
from vireid.configs import PRESETS_DIR, find_config, preset_names
from vireid.engine.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


def test_configs_is_the_packaged_folder_not_a_copy() -> None:
    assert (REPO / "configs").resolve() == PRESETS_DIR == (REPO / "vireid" / "configs").resolve()
    assert {"sysu", "regdb", "demo"} <= set(preset_names())


def test_a_preset_is_found_by_name_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config("sysu") == find_config("sysu.yaml") == PRESETS_DIR / "sysu.yaml"
    assert load_config("regdb").dataset == "regdb"
    assert load_config("ablation_peb").dataset == "sysu"        # its `inherit:` resolves beside it


def test_a_path_that_exists_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("sysu.yaml").write_text("inherit: " + str(PRESETS_DIR / "sysu.yaml") + "\nepochs: 3\n")
    assert load_config("sysu.yaml").epochs == 3
    assert load_config("sysu").epochs == 100                    # no file named `sysu`: the preset


def test_an_unknown_name_lists_the_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"'sysuu': no such file and no preset of that name \(presets: .*sysu"):
        load_config("sysuu")
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config("some/dir/sysu.yaml")
    res = CliRunner().invoke(train_cli, ["--config", "sysuu", "--cache", "c", "--out", "o"])
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and ", ".join(preset_names()) in lines[0], res.output
