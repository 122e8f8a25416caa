"""Every loss term in float32 under autocast (vireid.losses.precision), and the release's
L2-normalised-times-5 hetero-center features (LossConfig.hctri_feature)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vireid.losses import (HeteroCenterTripletLoss, LossConfig, compute_losses, identity_loss, kd_loss,
                           pose_loss)
from vireid.losses.total import hctri_features
from vireid.model import TrainOutput
from vireid.pose.joints import NUM_JOINTS

BF16 = dict(device_type="cpu", dtype=torch.bfloat16)


def _golden(golden_dir, case):
    data = np.load(golden_dir / "hctri_1000.npz")
    return (torch.from_numpy(data[f"{case}_feats"]), torch.from_numpy(data[f"{case}_labels"]),
            torch.from_numpy(data[f"{case}_modality"]), float(data[f"{case}_loss_mean"]))


@pytest.mark.shared
@pytest.mark.parametrize("case", ["case0", "case2"])
def test_hetero_center_under_bf16_autocast_equals_float32(golden_dir, case):
    # case2: 512-d features with squared norms ~26,000: in bfloat16 the Gram matrix of the
    # distances is off by whole units (the margin is 0.3)
    feats, labels, modality, want = _golden(golden_dir, case)
    loss = HeteroCenterTripletLoss(margin=0.3)
    fp32 = loss(feats, labels, modality)
    with torch.autocast(**BF16):
        got = loss(feats, labels, modality)
        got_bf16_input = loss(feats.bfloat16().float(), labels, modality)   # what a bf16 network gives
        got_via_total = HeteroCenterTripletLoss(0.3)(feats.bfloat16(), labels, modality)
    assert got.dtype == torch.float32 and got_via_total.dtype == torch.float32
    assert got.item() == pytest.approx(fp32.item(), rel=1e-4)
    assert got.item() == pytest.approx(want, rel=1e-4)
    # a bf16 tensor handed in is cast up, then computed in float32: the float32 value of those inputs
    assert got_via_total.item() == pytest.approx(got_bf16_input.item(), rel=1e-4)


def _outputs(dtype):
    g = torch.Generator().manual_seed(3)
    r = lambda *s: (torch.randn(*s, generator=g) * 8).to(dtype)  # noqa: E731
    return TrainOutput(id_logits=r(8, 6, 5), id_embeddings=r(8, 6, 512), pose_logits=r(8, 6, 5),
                       pose_embeddings=r(8, 6, 512), teacher_logits=r(8, 5),
                       heatmaps=torch.rand(8, 1, 12, 6, generator=g).to(dtype))


LABELS = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
MODALITY = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])


def test_every_term_is_float32_under_autocast_with_bf16_outputs():
    target = torch.rand(8, NUM_JOINTS, 12, 6, generator=torch.Generator().manual_seed(4))
    weights = torch.ones(8, NUM_JOINTS)
    out16 = _outputs(torch.bfloat16)
    out32 = TrainOutput(**{k: getattr(out16, k).float() for k in
                           ("id_logits", "id_embeddings", "pose_logits", "pose_embeddings", "teacher_logits",
                            "heatmaps")})
    want = compute_losses(out32, LABELS, MODALITY, target, weights, LossConfig())
    with torch.autocast(**BF16):
        got = compute_losses(out16, LABELS, MODALITY, target, weights, LossConfig())
        singles = [identity_loss(out16.id_logits, LABELS), kd_loss(out16.teacher_logits, out16.id_logits),
                   pose_loss(out16.heatmaps, target, weights)]
    assert set(got) == {"id", "hctri", "pose", "kd", "total"}
    for name, value in got.items():
        assert value.dtype == torch.float32, name
        assert value.item() == pytest.approx(want[name].item(), rel=1e-5), name
    assert all(v.dtype == torch.float32 for v in singles)


def test_gradient_reaches_bf16_embeddings():
    emb = _outputs(torch.bfloat16).id_embeddings.requires_grad_()
    with torch.autocast(**BF16):
        loss = HeteroCenterTripletLoss()(emb, LABELS, MODALITY)
    loss.backward()
    assert emb.grad is not None and emb.grad.dtype == torch.bfloat16 and torch.isfinite(emb.grad.float()).all()


# --------------------------------------------------------------------------- hctri_feature
# Four samples, one per (identity, modality): each is its own center. L2-normalised x 5:
# A=(3,4), B=(0,5) (identity 1, RGB / IR), C=(-5,0), D=(0,-5) (identity 2). Hinges
# (margin 0.3): A: 0.3 + |AB| - min(|AC|, |AD|) = 0.3 + sqrt(10) - sqrt(80) < 0 -> 0;
# B: 0.3 + sqrt(10) - sqrt(50) < 0 -> 0; C: 0.3 + |CD| - min(|CA|, |CB|) = 0.3 + sqrt(50) -
# sqrt(50) = 0.3; D: 0.3 + sqrt(50) - sqrt(90) < 0 -> 0. Mean over the 4 centers: 0.075.
# Raw: A=(3,4), B=(0,10), C=(-2,0), D=(0,-0.5): only A's hinge is positive,
# 0.3 + |AB| - |AD| = 0.3 + sqrt(45) - sqrt(29.25); mean = that / 4.
HAND_FEATS = torch.tensor([[3.0, 4.0], [0.0, 10.0], [-2.0, 0.0], [0.0, -0.5]])
HAND_LABELS = torch.tensor([1, 1, 2, 2])
HAND_MODALITY = torch.tensor([0, 1, 0, 1])


def _hand_outputs():
    emb = HAND_FEATS[:, None, :]                                  # [4, 1 stripe, 2]
    return TrainOutput(id_logits=torch.zeros(4, 1, 3), id_embeddings=emb, pose_logits=None,
                       pose_embeddings=None, teacher_logits=None, heatmaps=None)


def test_hctri_feature_l2x5_hand_value():
    l2x5 = compute_losses(_hand_outputs(), HAND_LABELS, HAND_MODALITY, config=LossConfig(hctri_feature="l2x5"))
    raw = compute_losses(_hand_outputs(), HAND_LABELS, HAND_MODALITY, config=LossConfig(hctri_feature="raw"))
    assert l2x5["hctri"].item() == pytest.approx(0.075, rel=1e-6)
    assert raw["hctri"].item() == pytest.approx((0.3 + math.sqrt(45) - math.sqrt(29.25)) / 4, rel=1e-6)
    assert LossConfig().hctri_feature == "raw"
    scaled = hctri_features(HAND_FEATS[:, None, :], "l2x5")
    assert torch.allclose(scaled.norm(dim=-1), torch.full((4, 1), 5.0))


def test_hctri_feature_rejects_unknown():
    with pytest.raises(ValueError, match="hctri_feature"):
        LossConfig(hctri_feature="l2")
