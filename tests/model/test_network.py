"""PoseVIReIDNet: shapes, modality routing, gradients, ablation switches, heatmap sizes."""
from __future__ import annotations

import pytest
import torch

from tests.model.helpers import INPUT_HW, NUM_CLASSES, distinct_stems, mixed_batch, small_config
from vireid.losses import compute_losses
from vireid.model import (
    HierarchicalFeatureConstraint,
    ModalitySpecificModule,
    ModelConfig,
    PCBHead,
    PoseEstimationBranch,
    PoseVIReIDNet,
    TrainOutput,
    build_resnet,
)
from vireid.pose.joints import NUM_JOINTS

HM = (INPUT_HW[0] // 4, INPUT_HW[1] // 4)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def full_model() -> PoseVIReIDNet:
    torch.manual_seed(0)
    return PoseVIReIDNet(small_config("full"))


@pytest.mark.parametrize("which", ["rgb", "ir", "mixed"])
def test_output_shapes(full_model, which):
    images, modality, _ = mixed_batch()
    if which != "mixed":
        modality = torch.full_like(modality, 0 if which == "rgb" else 1)
    full_model.train()
    out = full_model(images, modality)
    assert isinstance(out, TrainOutput)
    assert out.id_logits.shape == (8, 6, NUM_CLASSES)
    assert out.pose_logits.shape == (8, 6, NUM_CLASSES)
    assert out.id_embeddings.shape == out.pose_embeddings.shape == (8, 6, 512)
    assert out.teacher_logits.shape == (8, NUM_CLASSES)
    assert out.heatmaps.shape == (8, 1, *HM)
    full_model.eval()
    with torch.no_grad():
        feats = full_model(images, modality)
    assert set(feats) == {"f_id", "f_p", "f_all"}
    assert feats["f_id"].shape == feats["f_p"].shape == (8, 6 * 512)
    assert feats["f_all"].shape == (8, 12 * 512)
    assert torch.equal(feats["f_all"], torch.cat([feats["f_id"], feats["f_p"]], 1))
    norms = feats["f_all"].view(8, 12, 512).norm(dim=-1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    assert full_model.feature_dim == {"f_id": 3072, "f_p": 3072, "f_all": 6144}


def test_modality_routing_matches_own_stem():
    module = distinct_stems(1)
    images, modality, _ = mixed_batch()
    out = module(images, modality)
    for b in range(8):
        stem = module.ir if modality[b] == 1 else module.rgb
        assert torch.allclose(out[b], stem(images[b : b + 1])[0], rtol=1e-4, atol=1e-4)


def test_stems_get_gradient_only_from_their_modality():
    torch.manual_seed(2)
    module = ModalitySpecificModule(build_resnet("resnet18")).train()
    images, modality, _ = mixed_batch()
    out = module(images, modality)
    out[modality == 0].square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.rgb.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in module.ir.parameters())


def test_stems_in_full_model_eval_mode(full_model):
    full_model.eval()
    full_model.zero_grad(set_to_none=True)
    images, modality, _ = mixed_batch()
    feats = full_model(images, modality)
    feats["f_all"][modality == 1].sum().backward()
    ir_grad = sum(p.grad.abs().sum() for p in full_model.modality_specific.ir.parameters())
    assert ir_grad > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in full_model.modality_specific.rgb.parameters())
    full_model.zero_grad(set_to_none=True)


def test_bad_modality(full_model):
    images, modality, _ = mixed_batch()
    with pytest.raises(ValueError, match="0 \\(RGB\\) or 1 \\(IR\\)"):
        full_model(images, modality * 2)
    with pytest.raises(ValueError, match="modality must be"):
        full_model(images, modality[:4])


def test_every_parameter_gets_gradient_under_full_loss(full_model):
    full_model.train()
    full_model.zero_grad(set_to_none=True)
    images, modality, labels = mixed_batch()
    out = full_model(images, modality)
    target = torch.rand(8, NUM_JOINTS, *HM)
    losses = compute_losses(out, labels, modality, target, torch.ones(8, NUM_JOINTS))
    assert set(losses) == {"id", "hctri", "pose", "kd", "total"}
    losses["total"].backward()
    no_grad = [n for n, p in full_model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert no_grad == []
    full_model.zero_grad(set_to_none=True)


def test_mask_multiplies_reid_features(full_model):
    """Eq. 9: the ReID PCB heads see layer4's output times sigmoid(F_P)."""
    full_model.eval()
    seen = {}
    hooks = [
        full_model.reid_branch.register_forward_hook(lambda m, i, o: seen.__setitem__("f_id2", o)),
        full_model.pose_branch.register_forward_hook(lambda m, i, o: seen.__setitem__("f_p", o.features)),
        full_model.reid_pcb.register_forward_pre_hook(lambda m, i: seen.__setitem__("pcb_in", i[0])),
    ]
    try:
        with torch.no_grad():
            full_model(*mixed_batch()[:2])
    finally:
        for h in hooks:
            h.remove()
    assert torch.allclose(seen["pcb_in"], seen["f_id2"] * torch.sigmoid(seen["f_p"]), atol=1e-6)
    assert seen["f_p"].shape[-2:] == (INPUT_HW[0] // 16, INPUT_HW[1] // 16)


def test_ablation_switches_change_parameter_count():
    torch.manual_seed(3)
    models = {name: PoseVIReIDNet(small_config(name)) for name in ("baseline", "peb", "peb_pose", "full")}
    counts = {name: n_params(m) for name, m in models.items()}
    full = models["full"]
    peb_params = n_params(full.pose_branch) + n_params(full.pose_pcb)
    assert counts["peb"] - counts["baseline"] == peb_params > 0
    # The pose-loss switch owns no layer: the heatmap layers are on the PEB's feature path.
    assert counts["peb_pose"] == counts["peb"]
    assert counts["full"] - counts["peb_pose"] == n_params(full.hfc) > 0
    c4 = full.reid_branch.out_channels
    assert n_params(full.hfc) == (2 * c4 * 1024 + 1024) + 2 * 1024 + (1024 * NUM_CLASSES + NUM_CLASSES)
    assert models["baseline"].pose_branch is None and models["baseline"].hfc is None
    assert models["peb_pose"].hfc is None and models["peb_pose"].pose_branch is not None
    assert full.parameter_counts()["total"] == counts["full"]


def test_ablation_outputs_and_losses():
    torch.manual_seed(4)
    images, modality, labels = mixed_batch()
    target = torch.rand(8, NUM_JOINTS, *HM)
    expected = {
        "baseline": {"id", "hctri", "total"},
        "peb": {"id", "hctri", "total"},
        "peb_pose": {"id", "hctri", "pose", "total"},
    }
    for name, keys in expected.items():
        model = PoseVIReIDNet(small_config(name)).train()
        out = model(images, modality)
        assert (out.pose_logits is None) == (name == "baseline")
        assert out.teacher_logits is None
        assert (out.heatmaps is not None) == (name == "peb_pose")
        assert set(compute_losses(out, labels, modality, target)) == keys
    baseline = PoseVIReIDNet(small_config("baseline")).eval()
    with torch.no_grad():
        feats = baseline(images, modality)
    assert set(feats) == {"f_id", "f_all"} and torch.equal(feats["f_id"], feats["f_all"])


def test_per_joint_heatmaps():
    torch.manual_seed(5)
    model = PoseVIReIDNet(small_config("peb_pose", heatmap_channels=NUM_JOINTS)).train()
    images, modality, labels = mixed_batch()
    out = model(images, modality)
    assert out.heatmaps.shape == (8, NUM_JOINTS, *HM)
    w = torch.ones(8, NUM_JOINTS)
    assert torch.isfinite(compute_losses(out, labels, modality, torch.rand(8, NUM_JOINTS, *HM), w)["pose"])


def test_heatmap_size(full_model):
    assert ModelConfig().heatmap_size() == (72, 36)  # paper input 288x144
    assert ModelConfig().reid_feature_size() == (18, 9)
    assert full_model.heatmap_size() == HM
    assert full_model.heatmap_size((100, 50)) == (26, 14)  # rounding up at every stride 2
    full_model.train()
    out = full_model(torch.randn(4, 3, 100, 50), torch.tensor([0, 1, 0, 1]))
    assert tuple(out.heatmaps.shape[-2:]) == full_model.heatmap_size((100, 50))


def test_construction_errors():
    with pytest.raises(ValueError, match="use_hfc"):
        ModelConfig(use_pose_branch=False, use_pose_loss=False, use_hfc=True)
    with pytest.raises(ValueError, match="use_pose_loss"):
        ModelConfig(use_pose_branch=False, use_hfc=False)
    with pytest.raises(ValueError, match="heatmap_channels"):
        ModelConfig(heatmap_channels=3)
    with pytest.raises(ValueError, match="num_stripes"):
        ModelConfig(input_size=(64, 32))
    with pytest.raises(ValueError, match="backbone"):
        ModelConfig(backbone="vgg16")
    with pytest.raises(ValueError, match="unknown ablation"):
        ModelConfig.ablation("everything")


def test_block_modules_standalone():
    torch.manual_seed(6)
    branch = PoseEstimationBranch(in_channels=32, out_channels=40, mid_channels=16,
                                  pose_channels=24, deconv_channels=20, heatmap_channels=1).eval()
    out = branch(torch.randn(2, 32, 6, 4))
    assert out.features.shape == (2, 40, 3, 2) and out.heatmaps.shape == (2, 1, 12, 8)
    with pytest.raises(ValueError, match="pose_channels"):
        PoseEstimationBranch(in_channels=32, out_channels=40, mid_channels=16, pose_channels=0)
    head = PCBHead(40, 7, num_stripes=3, embed_dim=8).eval()
    emb, logits = head(torch.randn(2, 40, 6, 2))
    assert emb.shape == (2, 3, 8) and logits.shape == (2, 3, 7)
    with pytest.raises(ValueError, match="stripes"):
        head(torch.randn(2, 40, 2, 2))
    teacher = HierarchicalFeatureConstraint(40, 40, 7, embed_dim=16).eval()
    assert teacher(torch.randn(2, 40, 3, 2), torch.randn(2, 40, 3, 2)).shape == (2, 7)


def test_param_groups_and_replace(full_model):
    groups = full_model.parameter_groups()
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) == len(list(full_model.parameters()))
    assert len(groups["modality_specific"]) == len(list(full_model.modality_specific.parameters()))
    cfg = small_config("full")
    assert cfg.replace(heatmap_channels=NUM_JOINTS).heatmap_channels == NUM_JOINTS
    with pytest.raises(ValueError, match="heatmap_channels"):
        cfg.replace(heatmap_channels=2)
