"""The public 5-stage GCCPM LIP checkpoint's shape: a state dict in its exact key layout
(the golden 2-stage file's keys, float16, `{'state_dict': ...}`, stages 2-4 laid out as
stage 1) loads strictly into the estimator (and `vireid-prep`'s lip estimator) and as
`model.pose_init` at every stage index."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from pipeline.estimators.lip import LipEstimator
from tests.model.helpers import small_config
from vireid.model import PoseVIReIDNet, load_pose_branch_from_lip
from vireid.pose.gccpm import GCCPM, load_gccpm_checkpoint
from vireid.pose.joints import NUM_JOINTS

pytestmark = pytest.mark.shared

STAGES = 5


@pytest.fixture(scope="module")
def five_stage(golden_dir, tmp_path_factory):
    """(path, state dict): the golden file's keys and dtypes with refinement stages 0..4,
    each stage's tensors distinct (stage i = golden stage 1 + i / 100)."""
    src = torch.load(golden_dir / "lip_gccpm_2stage.pth", map_location="cpu", weights_only=True)["state_dict"]
    stage1 = {k[len("refinement_stages.1."):]: v for k, v in src.items() if k.startswith("refinement_stages.1.")}
    sd = {k: v for k, v in src.items() if not k.startswith("refinement_stages.")}
    for i in range(STAGES):
        for k, v in stage1.items():
            sd[f"refinement_stages.{i}.{k}"] = (v.float() + i / 100).to(v.dtype) if v.is_floating_point() else v
    path = tmp_path_factory.mktemp("lip5") / "lip_gccpm_5stage.pth"
    torch.save({"state_dict": sd}, path)
    return path, sd


def test_key_layout_is_the_public_one(five_stage):
    _, sd = five_stage
    stages = {int(m.group(1)) for k in sd for m in [re.match(r"refinement_stages\.(\d+)\.", k)] if m}
    assert stages == set(range(STAGES))
    own = GCCPM(num_refinement_stages=STAGES).state_dict()
    assert set(own) == set(sd)                                   # nothing missing, nothing extra
    assert all(own[k].shape == v.shape for k, v in sd.items())
    assert {v.dtype for v in sd.values() if v.is_floating_point()} == {torch.float16}


def test_loads_strictly_into_the_estimator(five_stage, tmp_path):
    path, sd = five_stage
    model = load_gccpm_checkpoint(path)
    assert len(model.refinement_stages) == STAGES
    own = model.state_dict()
    for k, v in sd.items():
        torch.testing.assert_close(own[k], v.float() if v.is_floating_point() else v, msg=k)
    with torch.no_grad():
        stages = model(torch.zeros(1, 3, 256, 256))
    assert len(stages) == STAGES + 1 and all(s.shape == (1, NUM_JOINTS + 1, 32, 32) for s in stages)
    est = LipEstimator(path)                                      # vireid-prep heatmaps --weights
    assert est.describe()["refinement_stages"] == STAGES
    rows = est.estimate([np.full((128, 64, 3), 100, np.uint8)], ["x.jpg"])
    assert rows.shape == (1, NUM_JOINTS, 3)


@pytest.mark.parametrize("stage_index", list(range(STAGES)) + [-1, -STAGES])
@pytest.mark.parametrize("channels", [1, NUM_JOINTS])
def test_loads_as_pose_init_at_every_stage(five_stage, stage_index, channels):
    path, sd = five_stage
    model = PoseVIReIDNet(small_config("full", heatmap_channels=channels))
    report = load_pose_branch_from_lip(model, path, stage_index=stage_index)
    stage = stage_index % STAGES
    own = model.pose_branch.refinement.state_dict()
    assert len(report["loaded"]) + len(report["adapted"]) == len(own)
    for k in report["loaded"]:
        assert torch.equal(own[k], sd[f"refinement_stages.{stage}.{k}"].float()), k
    for k in report["adapted"]:
        joints = sd[f"refinement_stages.{stage}.{k}"].float()[:NUM_JOINTS]
        torch.testing.assert_close(own[k], joints if channels == NUM_JOINTS else joints.mean(0, keepdim=True))
