"""The paper presets train only on the LIP estimator's cache unless told otherwise
(``data.require_estimator``, issue 26), and Table IV's documented command, with
``model.pose_init`` for every row, gets past its Baseline row (no Pose Estimation branch)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from tests.engine.test_trainer import TINY, cache_dir  # noqa: F401 - the module-scoped cache fixture
from vireid.cli.train import cli
from vireid.data.errors import CacheError
from vireid.engine import ablation as ab
from vireid.engine.config import ConfigError, load_config
from vireid.engine.errors import TrainError
from vireid.engine.trainer import check_cache_estimator

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PAPER = ("sysu.yaml", "regdb.yaml", "sysu_release.yaml", "regdb_release.yaml")


def test_paper_and_release_presets_require_the_lip_estimator_and_the_demo_does_not():
    for name in PAPER:
        assert load_config(CONFIGS / name).data.require_estimator == "lip", name
    assert load_config(CONFIGS / "demo.yaml").data.require_estimator is None
    assert load_config(None).data.require_estimator is None
    with pytest.raises(ConfigError, match="data.require_estimator must be null or one of lip, blazepose"):
        load_config(None, ["data.require_estimator=gccpm"])


def test_a_paper_preset_refuses_a_keypoints_cache_in_one_line(cache_dir, tmp_path):  # noqa: F811
    sets = [a for kv in TINY + ["model.pose_init=null"] for a in ("--set", kv)]
    res = CliRunner().invoke(cli, ["--config", str(CONFIGS / "sysu.yaml"), "--cache", str(cache_dir),
                                   "--out", str(tmp_path / "run"), *sets])
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    line = lines[0]
    assert f"{cache_dir}/cache.json: made by exact keypoints" in line, line
    assert "data.require_estimator: lip" in line and "--set data.require_estimator=null" in line, line
    assert not (tmp_path / "run").exists()


def _cache(attrs):
    return SimpleNamespace(root=Path("c"), attrs=attrs)


def test_a_cache_without_the_record_is_unknown_and_refused_unless_allowed():
    paper = load_config(CONFIGS / "sysu.yaml")
    for attrs in ({}, {"estimator": {"weights": "x"}}):
        with pytest.raises(TrainError, match=r"c/cache.json: made by an unknown estimator \(its cache.json "
                                             r"records none.*--set data.require_estimator=null"):
            check_cache_estimator(_cache(attrs), paper)
    blaze = {"estimator": {"estimator": "blazepose", "mediapipe_version": "0.10.21", "weights_sha256": "0" * 64}}
    with pytest.raises(TrainError, match=r"made by the blazepose estimator \(mediapipe 0.10.21"):
        check_cache_estimator(_cache(blaze), paper)
    allowed = load_config(CONFIGS / "sysu.yaml", ["data.require_estimator=null"])
    for attrs in ({}, blaze):
        check_cache_estimator(_cache(attrs), allowed)          # accepted when allowed
    check_cache_estimator(_cache({"estimator": {"estimator": "lip", "weights_sha256": "1" * 64}}), paper)


def test_table_iv_pose_init_applies_to_the_rows_with_the_pose_branch(tmp_path):
    rows = ab.preset_rows(CONFIGS)
    sets = ["device=cpu", "model.pose_init=lip_gccpm.pt"]
    applied = {r.slug: ab.overrides_for_row(CONFIGS / "sysu.yaml", r, sets) for r in rows}
    assert applied["baseline"] == ["device=cpu"]
    assert all(applied[s] == sets for s in ("peb", "peb_pose", "full"))
    # docs/reproducing.md's Table IV command gets past every row's configuration (old code: ConfigError on the
    # Baseline row); it stops only at the cache, which does not exist here
    with pytest.raises(CacheError):
        ab.run_ablation(CONFIGS / "sysu.yaml", tmp_path / "no-cache", tmp_path / "abl", overrides=sets)
