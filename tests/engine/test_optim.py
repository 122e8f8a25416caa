"""The optimizer's parameter groups: the release presets' Nesterov SGD with the modality-specific
stems (layer0 + layer1 of both modalities) at 0.1x lr, the paper presets' plain SGD at one lr."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.model.helpers import small_config
from vireid.engine.config import load_config
from vireid.engine.optim import build_optimizer, build_scheduler
from vireid.model import PoseVIReIDNet

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return PoseVIReIDNet(small_config("full"))


def _ids(params):
    return {id(p) for p in params}


@pytest.mark.parametrize("preset", ["sysu_release.yaml", "regdb_release.yaml"])
def test_release_presets_nesterov_and_stems_at_a_tenth(model, preset):
    cfg = load_config(CONFIGS / preset)
    opt = build_optimizer(model, cfg.optim)
    groups = {g["name"]: g for g in opt.param_groups}
    assert set(groups) == {"modality_specific", "rest"}
    stems = groups["modality_specific"]
    assert _ids(stems["params"]) == _ids(model.modality_specific.parameters())
    assert _ids(groups["rest"]["params"]) == _ids(model.parameters()) - _ids(model.modality_specific.parameters())
    assert stems["lr"] == pytest.approx(0.001) and groups["rest"]["lr"] == pytest.approx(0.01)
    for g in opt.param_groups:
        assert g["nesterov"] is True and g["momentum"] == 0.9 and g["weight_decay"] == 5e-4
    # the schedule scales both groups, keeping the stems at a tenth (epoch 12: x0.75 in SYSU)
    sched = build_scheduler(opt, cfg.optim)
    for _ in range(cfg.optim.milestones[0]):
        opt.step()
        sched.step()
    assert stems["lr"] == pytest.approx(0.1 * groups["rest"]["lr"]) and groups["rest"]["lr"] == pytest.approx(0.0075)


@pytest.mark.parametrize("preset", ["sysu.yaml", "regdb.yaml"])
def test_paper_presets_plain_sgd_one_lr(model, preset):
    cfg = load_config(CONFIGS / preset)
    opt = build_optimizer(model, cfg.optim)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.01]
    assert all(g["nesterov"] is False and g["momentum"] == 0.9 for g in opt.param_groups)
