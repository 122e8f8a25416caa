"""Pose loss (eq. 16) with per-joint weights and the merged single-map mode."""
from __future__ import annotations

import pytest
import torch

from vireid.losses import merge_joint_heatmaps, pose_loss
from vireid.pose.joints import NUM_JOINTS


def _data(seed=0, b=2, h=8, w=4):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(b, NUM_JOINTS, h, w, generator=g)
    weights = torch.ones(b, NUM_JOINTS)
    weights[0, 3] = 0.0
    weights[1, 10] = 0.0
    return target, weights, g


@pytest.mark.parametrize("channels", [1, NUM_JOINTS])
@pytest.mark.parametrize("norm", ["mean", "sum", "relative"])
def test_zero_weight_joint_is_ignored(channels, norm):
    target, weights, g = _data()
    pred = torch.rand(2, channels, 8, 4, generator=g)
    ref = pose_loss(pred, target, weights, norm)
    changed = target.clone()
    changed[0, 3] = 5.0  # large values: would dominate the max if counted
    changed[1, 10] = torch.rand(8, 4, generator=g) * 7
    assert pose_loss(pred, changed, weights, norm).item() == pytest.approx(ref.item(), rel=1e-6)
    # A weighted joint does count.
    changed[0, 4] = 5.0
    assert pose_loss(pred, changed, weights, norm).item() != pytest.approx(ref.item(), rel=1e-6)


def test_per_joint_hand_value():
    target, weights, g = _data()
    pred = torch.rand(2, NUM_JOINTS, 8, 4, generator=g)
    sq = ((pred - target) ** 2).sum(dim=(2, 3))  # [B, J]
    want_sum = (sq * weights).sum() / 2
    assert pose_loss(pred, target, weights, "sum").item() == pytest.approx(want_sum.item(), rel=1e-5)
    assert pose_loss(pred, target, weights, "mean").item() == pytest.approx(
        want_sum.item() * 2 / (2 * NUM_JOINTS * 8 * 4), rel=1e-5
    )


def test_merged_mode_equals_mse_to_max():
    target, weights, g = _data(3)
    pred = torch.rand(2, 1, 8, 4, generator=g)
    merged = torch.stack([
        torch.stack([target[b, j] for j in range(NUM_JOINTS) if weights[b, j] > 0]).amax(0)
        for b in range(2)
    ])[:, None]
    assert torch.allclose(merge_joint_heatmaps(target, weights), merged)
    want = ((pred - merged) ** 2).mean()
    assert pose_loss(pred, target, weights).item() == pytest.approx(want.item(), rel=1e-5)
    # Already-merged targets give the same value.
    assert pose_loss(pred, merged).item() == pytest.approx(want.item(), rel=1e-5)


def test_sample_without_pose_is_ignored_in_merged_mode():
    target, weights, g = _data(4)
    weights[1] = 0.0
    pred = torch.rand(2, 1, 8, 4, generator=g)
    ref = pose_loss(pred, target, weights)
    pred2 = pred.clone()
    pred2[1] += 3.0
    assert pose_loss(pred2, target, weights).item() == pytest.approx(ref.item(), rel=1e-6)


def test_zero_when_equal_and_errors():
    target, _, _ = _data()
    assert pose_loss(target.clone(), target).item() == 0.0
    with pytest.raises(ValueError, match="do not match"):
        pose_loss(torch.rand(2, 1, 16, 8), target)
    with pytest.raises(ValueError, match="normalization"):
        pose_loss(target, target, normalization="median")
    with pytest.raises(ValueError, match="cannot compare"):
        pose_loss(torch.rand(2, 3, 8, 4), target)


def _one_joint_maps(b=2, h=8, w=4):
    """A Gaussian-like map of peak 1 at (3, 1) for joint 5 of every sample, zeros elsewhere."""
    maps = torch.zeros(b, NUM_JOINTS, h, w)
    maps[:, 5, 3, 1] = 1.0
    maps[:, 5, 2, 1] = maps[:, 5, 4, 1] = 0.5
    return maps


@pytest.mark.parametrize("conf", [0.05, 0.3, 0.99])
def test_merged_target_keeps_peak_one_for_any_confidence_above_the_threshold(conf):
    maps = _one_joint_maps()
    weights = torch.zeros(2, NUM_JOINTS)
    weights[:, 5] = conf
    merged = merge_joint_heatmaps(maps, weights)
    assert merged.amax().item() == 1.0                       # not the confidence
    assert torch.equal(merged[:, 0], maps[:, 5])
    pred = torch.zeros(2, 1, 8, 4)
    # hand value: (1 + 0.25 + 0.25) per sample over 2 * 8 * 4 pixels
    assert pose_loss(pred, maps, weights).item() == pytest.approx(2 * 1.5 / (2 * 8 * 4))
    # the same loss as a fully confident joint: the confidence is no amplitude
    assert pose_loss(pred, maps, torch.where(weights > 0, 1.0, 0.0)).item() == pose_loss(pred, maps, weights).item()


@pytest.mark.parametrize("channels", [1, NUM_JOINTS])
def test_confidence_threshold_drops_joints_below_it(channels):
    maps = _one_joint_maps()
    maps[:, 9, 6, 2] = 1.0
    weights = torch.zeros(2, NUM_JOINTS)
    weights[:, 5] = 0.8
    weights[:, 9] = 0.3
    pred = torch.zeros(2, channels, 8, 4)
    keep_both = pose_loss(pred, maps, weights, min_confidence=0.0)
    keep_one = pose_loss(pred, maps, weights, min_confidence=0.5)
    denom = 2 * channels * 8 * 4
    assert keep_both.item() == pytest.approx(2 * 2.5 / denom)        # joint 5: 1.5, joint 9: 1.0
    assert keep_one.item() == pytest.approx(2 * 1.5 / denom)
    with pytest.raises(ValueError, match="min_confidence"):
        pose_loss(pred, maps, weights, min_confidence=1.0)


def test_per_joint_weights_are_a_mask():
    target, _, g = _data(5)
    pred = torch.rand(2, NUM_JOINTS, 8, 4, generator=g)
    conf = torch.rand(2, NUM_JOINTS, generator=g) * 0.9 + 0.05
    assert pose_loss(pred, target, conf).item() == pytest.approx(pose_loss(pred, target).item(), rel=1e-6)


def test_relative_normalization_by_hand():
    """'relative': each image's squared error over its target energy, averaged over images."""
    target = torch.zeros(2, 1, 2, 2)
    target[0, 0, 0, 0] = 1.0                         # energy 1
    target[1, 0] = torch.tensor([[1.0, 1.0], [0.0, 0.0]])   # energy 2
    pred = torch.zeros(2, 1, 2, 2)
    pred[0, 0, 1, 1] = 1.0                           # image 0 error: 1 (missed) + 1 (false) = 2 -> 2/1
    pred[1, 0, 0, 0] = 0.5                           # image 1 error: 0.25 + 1 = 1.25 -> 1.25/2
    assert pose_loss(pred, target, normalization="relative").item() == pytest.approx((2.0 + 0.625) / 2)
    # an all-zero prediction scores 1, a perfect one 0, at any resolution or width of the maps
    for size in ((8, 4), (32, 16)):
        t = torch.rand(3, NUM_JOINTS, *size)
        assert pose_loss(torch.zeros_like(t), t, normalization="relative").item() == pytest.approx(1.0, rel=1e-6)
        assert pose_loss(t, t, normalization="relative").item() == 0.0
    # an image with no kept joint is left out; a batch with none gives 0 with a gradient
    w = torch.zeros(2, NUM_JOINTS)
    w[0] = 1.0
    t, p = torch.rand(2, NUM_JOINTS, 4, 4), torch.rand(2, NUM_JOINTS, 4, 4, requires_grad=True)
    only0 = pose_loss(p[:1], t[:1], normalization="relative")
    assert pose_loss(p, t, w, "relative").item() == pytest.approx(only0.item(), rel=1e-6)
    none = pose_loss(p, t, torch.zeros(2, NUM_JOINTS), "relative")
    none.backward()
    assert none.item() == 0.0 and p.grad is not None and float(p.grad.abs().sum()) == 0.0
