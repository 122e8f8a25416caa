"""Weight loading: ImageNet backbone from a file, Refinement Module from GCCPM (LIP). The
torch hub cache and torchvision's IMAGENET1K_V1 file: tests/model/test_pretrained.py."""
from __future__ import annotations

import hashlib

import pytest
import torch
import torchvision

from tests.model.helpers import small_config
from vireid.model import PoseVIReIDNet, load_imagenet_backbone, load_pose_branch_from_lip
from vireid.pose.joints import NUM_JOINTS


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(10)
    net = torchvision.models.resnet18(weights=None)
    for m in net.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    path = tmp_path_factory.mktemp("weights") / "resnet18-test.pth"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def test_load_imagenet_backbone(resnet18_file):
    path, sd = resnet18_file
    model = PoseVIReIDNet(small_config("baseline"))
    report = load_imagenet_backbone(model, path)
    own = model.state_dict()
    for stem in ("rgb", "ir"):
        assert torch.equal(own[f"modality_specific.{stem}.conv1.weight"], sd["conv1.weight"])
        assert torch.equal(own[f"modality_specific.{stem}.bn1.running_var"], sd["bn1.running_var"])
        assert torch.equal(own[f"modality_specific.{stem}.layer1.1.conv2.weight"], sd["layer1.1.conv2.weight"])
    assert torch.equal(own["modality_shared.layer2.0.downsample.0.weight"], sd["layer2.0.downsample.0.weight"])
    assert torch.equal(own["reid_branch.layer4.1.bn2.running_mean"], sd["layer4.1.bn2.running_mean"])
    # every backbone tensor except fc: stem tensors twice
    stem_keys = [k for k in sd if k.split(".")[0] in ("conv1", "bn1", "layer1")]
    other = [k for k in sd if k.split(".")[0] in ("layer2", "layer3", "layer4")]
    assert report["tensors"] == 2 * len(stem_keys) + len(other)


def test_load_imagenet_errors(tmp_path):
    model = PoseVIReIDNet(small_config("baseline"))
    missing = tmp_path / "nope" / "resnet18.pth"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_imagenet_backbone(model, missing)
    wrong = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), wrong)
    with pytest.raises(ValueError, match="resnet34.pth"):
        load_imagenet_backbone(model, wrong)  # resnet34 has extra blocks: unexpected keys
    r50_in_r18 = tmp_path / "r50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), r50_in_r18)
    with pytest.raises(ValueError, match="does not match a torchvision resnet18"):
        load_imagenet_backbone(model, r50_in_r18)
    junk = tmp_path / "junk.pth"
    torch.save({"a": 1}, junk)
    with pytest.raises(ValueError, match="state dict"):
        load_imagenet_backbone(model, junk)


def _gccpm_like_state(model: PoseVIReIDNet, stages: int = 2) -> dict:
    """A GCCPM-layout state dict: ``refinement_stages.<i>.*`` of 145 -> 17-map stages."""
    from vireid.pose.gccpm import RefinementStage

    torch.manual_seed(11)
    sd = {}
    for i in range(stages):
        stage = RefinementStage(128 + NUM_JOINTS + 1, 128, NUM_JOINTS + 1)
        for k, v in stage.state_dict().items():
            sd[f"refinement_stages.{i}.{k}"] = v.half() if v.is_floating_point() else v
    return {"state_dict": sd}


@pytest.mark.parametrize("channels", [1, NUM_JOINTS])
def test_load_pose_branch_from_lip_synthetic(channels, tmp_path):
    model = PoseVIReIDNet(small_config("peb_pose", heatmap_channels=channels))
    ckpt = _gccpm_like_state(model)
    path = tmp_path / "gccpm.pth"
    torch.save(ckpt, path)
    report = load_pose_branch_from_lip(model, path, stage_index=1)
    assert report["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()     # what a run records
    own = model.pose_branch.refinement.state_dict()
    src = {k[len("refinement_stages.1."):]: v.float() for k, v in ckpt["state_dict"].items()
           if k.startswith("refinement_stages.1.")}
    assert len(report["adapted"]) == 2 and len(report["loaded"]) == len(own) - 2
    for k in report["loaded"]:
        assert torch.equal(own[k], src[k]), k
    for k in report["adapted"]:
        want = src[k][:NUM_JOINTS]
        if channels == 1:
            want = want.mean(0, keepdim=True)
        assert torch.allclose(own[k], want), k
    # An in-memory state dict works too; the stage index picks the stage.
    load_pose_branch_from_lip(model, ckpt["state_dict"], stage_index=0)
    k = report["loaded"][0]
    assert torch.equal(model.pose_branch.refinement.state_dict()[k],
                       ckpt["state_dict"][f"refinement_stages.0.{k}"].float())


def test_load_pose_branch_errors(tmp_path):
    model = PoseVIReIDNet(small_config("peb_pose"))
    ckpt = _gccpm_like_state(model, stages=1)
    with pytest.raises(ValueError, match="out of range"):
        load_pose_branch_from_lip(model, ckpt, stage_index=3)
    with pytest.raises(ValueError, match="not a GCCPM checkpoint"):
        load_pose_branch_from_lip(model, {"state_dict": {"x.weight": torch.zeros(1)}})
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_pose_branch_from_lip(model, tmp_path / "missing.pth")
    odd = PoseVIReIDNet(small_config("peb_pose", initial_heatmap_channels=4))
    with pytest.raises(ValueError, match="128 features \\+ 17 heatmaps"):
        load_pose_branch_from_lip(odd, ckpt)
    with pytest.raises(ValueError, match="no Pose Estimation branch"):
        load_pose_branch_from_lip(PoseVIReIDNet(small_config("baseline")), ckpt)


@pytest.mark.shared
def test_load_pose_branch_from_golden_checkpoint(golden_dir):
    model = PoseVIReIDNet(small_config("full"))
    path = golden_dir / "lip_gccpm_2stage.pth"
    report = load_pose_branch_from_lip(model, path, stage_index=-1)
    src = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    own = model.pose_branch.refinement.state_dict()
    for k in report["loaded"]:
        assert torch.equal(own[k], src[f"refinement_stages.1.{k}"].float()), k
    assert report["adapted"], "the heatmap output conv must be adapted from 17 maps to 1"
