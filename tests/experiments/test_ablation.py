"""Table IV runner: the row presets as overrides, four one-step runs and the table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.engine.test_trainer import TINY, cache_dir  # noqa: F401 - the module-scoped cache fixture
from vireid.experiments import ablation as ab
from vireid.model.checkpoint import load_checkpoint
from vireid.engine.config import ConfigError, load_config
from vireid.evaluation.testing import EvalOptions, untrained_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_row_presets_switch_only_the_components():
    want = {"baseline": (False, False, False), "peb": (True, False, False), "peb_pose": (True, True, False),
            "full": (True, True, True)}
    demo = load_config(CONFIGS / "demo.yaml")
    for _, slug, name in ab.ROWS:
        over = ab.row_overrides(CONFIGS / name)
        assert all(o.startswith("model.") for o in over), over          # nothing but the model's switches
        cfg = load_config(CONFIGS / "demo.yaml", over)
        assert (cfg.model.use_pose_branch, cfg.model.use_pose_loss, cfg.model.use_hfc) == want[slug]
        assert (cfg.epochs, cfg.seed, cfg.data, cfg.optim) == (demo.epochs, demo.seed, demo.data, demo.optim)
        assert cfg.model.backbone == demo.model.backbone == "resnet18"  # the demo's budget, not sysu.yaml's


def test_row_overrides_errors(tmp_path):
    with pytest.raises(ConfigError, match="absent.yaml: ablation preset not found"):
        ab.row_overrides(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping"):
        ab.row_overrides(tmp_path / "list.yaml")


def test_four_rows_and_the_untrained_reference(cache_dir, tmp_path):  # noqa: F811
    sets = TINY + ["epochs=1", "data.batches_per_epoch=1", "data.holdout=null"]
    res = ab.run_ablation(CONFIGS / "demo.yaml", cache_dir, tmp_path / "abl", overrides=sets,
                          options=EvalOptions(mode="all", trials=1))
    names = [r[0] for r in ab.ROWS] + [ab.UNTRAINED_ROW]
    assert list(res.rows) == names
    doc = json.loads((tmp_path / "abl" / "ablation.json").read_text())
    assert [r["name"] for r in doc["rows"]] == names and doc["seed"] == 0
    rows = {r["name"]: r for r in doc["rows"]}
    for name, slug, _ in ab.ROWS:
        ck = load_checkpoint(tmp_path / "abl" / slug / "last.pt")
        assert ck["epoch"] == 1 and ck["config"]["data"]["batches_per_epoch"] == 1
        assert (tmp_path / "abl" / slug / "eval" / "results.json").is_file()
        row = rows[name]
        assert row["setting"] == "All-search" and 0 <= row["features"]["f_ALL"]["mAP"] <= 1
    base = rows["Baseline"]
    assert base["components"] == {"use_pose_branch": False, "use_pose_loss": False, "use_hfc": False}
    assert base["features"]["f_ID"] == base["features"]["f_ALL"]          # no PEB: f_ALL is f_ID
    md = (tmp_path / "abl" / "ablation.md").read_text()
    assert md == res.markdown and md.startswith("All-search")
    assert "| Baseline |  |  |  |" in md and "| + PEB + L_pose + HFC (full) | x | x | x |" in md
    # rerunning reuses the finished rows (resume auto): same numbers, nothing retrained
    again = ab.run_ablation(CONFIGS / "demo.yaml", cache_dir, tmp_path / "abl", overrides=sets,
                            options=EvalOptions(mode="all", trials=1), untrained_reference=False)
    assert again.rows["+ PEB"]["features"] == res.rows["+ PEB"]["features"]
    assert ab.UNTRAINED_ROW not in again.rows


def test_untrained_model_is_the_trainers_starting_point(cache_dir, tmp_path, monkeypatch):  # noqa: F811
    """The weights vireid-eval --untrained uses are those vireid-train started from."""
    import vireid.engine.trainer as trainer

    built = []
    real = trainer.PoseVIReIDNet

    def spy(cfg):
        net = real(cfg)
        built.append({k: v.clone() for k, v in net.state_dict().items()})
        return net

    monkeypatch.setattr(trainer, "PoseVIReIDNet", spy)
    cfg = load_config(CONFIGS / "demo.yaml", TINY + ["epochs=1", "data.batches_per_epoch=1", "data.holdout=null",
                                                     "seed=7"])
    trainer.train(cfg, cache_dir, tmp_path / "run")
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    state = untrained_model(ck).state_dict()
    assert len(built) == 1 and set(state) == set(built[0])
    assert all(torch.equal(state[k], built[0][k]) for k in state)
    trained = ck["model"]
    assert any(not torch.equal(trained[k], state[k]) for k in state if state[k].is_floating_point())
