"""Per-loss gradient norms on the shared layers: values against a direct backward pass, a
switched-off term has share 0, and the measurement leaves training unchanged."""
from __future__ import annotations

import pytest
import torch

from tests.engine.test_trainer import TINY, cache_dir, tiny_config  # noqa: F401 - module-scoped cache fixture
from tests.model.helpers import INPUT_HW, mixed_batch, small_config
from vireid.model.checkpoint import load_checkpoint
from vireid.engine.grad_share import describe, gradient_norms, shared_blocks, weighted_terms
from vireid.engine.plots import grad_share_series
from vireid.engine.runlog import read_log
from vireid.engine.trainer import train
from vireid.losses import LossConfig, compute_losses
from vireid.model import PoseVIReIDNet
from vireid.pose.joints import NUM_JOINTS


def _losses(preset: str, loss_cfg: LossConfig):
    torch.manual_seed(0)
    model = PoseVIReIDNet(small_config(preset)).train()
    images, modality, labels = mixed_batch()
    g = torch.Generator().manual_seed(1)
    targets = torch.rand(8, NUM_JOINTS, INPUT_HW[0] // 4, INPUT_HW[1] // 4, generator=g)
    out = model(images, modality)
    return model, compute_losses(out, labels, modality, targets, torch.ones(8, NUM_JOINTS), loss_cfg)


def _direct_norm(model, term, params):
    model.zero_grad(set_to_none=True)
    term.backward(retain_graph=True)
    return sum(float(p.grad.pow(2).sum()) for p in params if p.grad is not None) ** 0.5


def test_norms_equal_a_direct_backward_and_shares_sum_to_one():
    cfg = LossConfig()
    model, losses = _losses("full", cfg)
    blocks = shared_blocks(model)
    assert set(blocks) == {"modality_shared", "pose_conv1"}
    got = gradient_norms(weighted_terms(losses, cfg), blocks)
    weights = {"id": 1.0, "hctri": cfg.beta, "pose": cfg.lambda_pose, "kd": cfg.gamma}
    for block, params in blocks.items():
        for term, w in weights.items():
            want = _direct_norm(model, losses[term] * w, params)
            assert got[f"{block}/{term}"] == pytest.approx(want, rel=1e-5), (block, term)
        assert sum(got[f"{block}/{t}_share"] for t in weights) == pytest.approx(1.0)
    assert got["modality_shared/pose"] > 0 and got["pose_conv1/pose"] > 0
    # the norm of a weighted term scales with its weight
    five = gradient_norms(weighted_terms(losses, LossConfig(lambda_pose=5.0)), blocks)
    one = gradient_norms(weighted_terms(losses, LossConfig(lambda_pose=1.0)), blocks)
    assert five["modality_shared/pose"] == pytest.approx(5 * one["modality_shared/pose"], rel=1e-5)


def test_switched_off_term_has_zero_share():
    model, losses = _losses("full", LossConfig(lambda_pose=0.0))
    got = gradient_norms(weighted_terms(losses, LossConfig(lambda_pose=0.0)), shared_blocks(model))
    assert got["modality_shared/pose"] == 0.0 and got["modality_shared/pose_share"] == 0.0
    assert got["modality_shared/id_share"] > 0
    assert "pose" not in describe(got) and "id" in describe(got)
    # no PEB: no pose block, no pose or kd term
    model, losses = _losses("baseline", LossConfig())
    got = gradient_norms(weighted_terms(losses, LossConfig()), shared_blocks(model))
    assert "pose_conv1/id" not in got
    assert got["modality_shared/pose_share"] == got["modality_shared/kd_share"] == 0.0
    assert got["modality_shared/id_share"] + got["modality_shared/hctri_share"] == pytest.approx(1.0)


def test_trainer_logs_grad_records_without_changing_training(cache_dir, tmp_path):  # noqa: F811
    run = ["epochs=1", "data.batches_per_epoch=2"]
    measured = train(tiny_config(*run, "grad_every=1"), cache_dir, tmp_path / "m")
    plain = train(tiny_config(*run, "grad_every=0"), cache_dir, tmp_path / "p")
    a, b = load_checkpoint(measured.last)["model"], load_checkpoint(plain.last)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    records = read_log(tmp_path / "m" / "log.jsonl")
    grads = [r for r in records if r["kind"] == "grad"]
    assert [r["step"] for r in grads] == [1, 2]
    assert grads[0]["modality_shared/pose"] > 0 and 0 < grads[0]["pose_conv1/pose_share"] <= 1
    assert not [r for r in read_log(tmp_path / "p" / "log.jsonl") if r["kind"] == "grad"]
    shares = grad_share_series(records)
    assert shares["step"] == [1.0, 2.0] and set(shares) >= {"id", "hctri", "pose", "kd"}
    assert (tmp_path / "m" / "losses.png").stat().st_size > 1000
