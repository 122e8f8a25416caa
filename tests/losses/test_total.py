"""Eq. 21: the weighted total and the named terms."""
from __future__ import annotations

import pytest
import torch

from vireid.losses import HeteroCenterTripletLoss, LossConfig, compute_losses, identity_loss, kd_loss, pose_loss
from vireid.model import TrainOutput
from vireid.pose.joints import NUM_JOINTS


def _outputs(seed=0, pose=True, teacher=True, heatmaps=True):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return TrainOutput(
        id_logits=r(8, 6, 5), id_embeddings=r(8, 6, 16),
        pose_logits=r(8, 6, 5) if pose else None, pose_embeddings=r(8, 6, 16) if pose else None,
        teacher_logits=r(8, 5) if teacher else None,
        heatmaps=torch.rand(8, 1, 12, 6, generator=g) if heatmaps else None,
    )


LABELS = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
MODALITY = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])


def test_paper_weights():
    cfg = LossConfig()
    assert (cfg.beta, cfg.lambda_pose, cfg.gamma, cfg.margin) == (0.1, 5.0, 1.0, 0.3)


def test_total_is_weighted_sum():
    out = _outputs()
    target = torch.rand(8, NUM_JOINTS, 12, 6)
    w = torch.ones(8, NUM_JOINTS)
    cfg = LossConfig(beta=0.2, lambda_pose=3.0, gamma=0.5)
    losses = compute_losses(out, LABELS, MODALITY, target, w, cfg)
    hc = HeteroCenterTripletLoss(0.3)
    want = {
        "id": identity_loss(out.id_logits, LABELS) + identity_loss(out.pose_logits, LABELS),
        "hctri": hc(out.id_embeddings, LABELS, MODALITY) + hc(out.pose_embeddings, LABELS, MODALITY),
        "pose": pose_loss(out.heatmaps, target, w),
        "kd": kd_loss(out.teacher_logits, out.id_logits) + kd_loss(out.teacher_logits, out.pose_logits),
    }
    for k, v in want.items():
        assert losses[k].item() == pytest.approx(v.item(), rel=1e-6), k
    total = want["id"] + 0.2 * want["hctri"] + 3.0 * want["pose"] + 0.5 * want["kd"]
    assert losses["total"].item() == pytest.approx(total.item(), rel=1e-6)


def test_switched_off_terms_are_absent():
    out = _outputs(pose=False, teacher=False, heatmaps=False)
    losses = compute_losses(out, LABELS, MODALITY)
    assert set(losses) == {"id", "hctri", "total"}
    assert losses["total"].item() == pytest.approx((losses["id"] + 0.1 * losses["hctri"]).item(), rel=1e-6)


def test_missing_target_and_bad_config():
    with pytest.raises(ValueError, match="no target heatmaps"):
        compute_losses(_outputs(), LABELS, MODALITY)
    with pytest.raises(ValueError, match="beta"):
        LossConfig(beta=-1)
    with pytest.raises(ValueError, match="hctri_reduction"):
        LossConfig(hctri_reduction="max")
    with pytest.raises(ValueError, match="kd_temperature"):
        LossConfig(kd_temperature=0)


def test_gather_gives_the_hctri_term_the_global_batch_with_the_patched_gradient():
    """``ddp.gather_hctri``: with a gather hook the hetero-center term is that of the gathered batch,
    and the total's gradient is the one the trainer got before by patching the local total with
    ``beta * (global - local)``."""
    other = _outputs(seed=1)                                     # another process's share: constants here
    target, w, cfg = torch.rand(8, NUM_JOINTS, 12, 6), torch.ones(8, NUM_JOINTS), LossConfig()
    hc = HeteroCenterTripletLoss(cfg.margin)

    def gather(embeddings, labels, modality):
        mine = [e.float() for e in embeddings]
        return ([torch.cat([e, o]) for e, o in zip(mine, (other.id_embeddings, other.pose_embeddings))],
                torch.cat([labels, LABELS + 2]), torch.cat([modality, MODALITY]))

    def leaf_outputs():
        out = _outputs()
        out.id_embeddings.requires_grad_(True)
        out.pose_embeddings.requires_grad_(True)
        return out

    out = leaf_outputs()
    losses = compute_losses(out, LABELS, MODALITY, target, w, cfg, gather=gather)
    (e_id, e_pose), labels, modality = gather([out.id_embeddings, out.pose_embeddings], LABELS, MODALITY)
    global_h = hc(e_id, labels, modality) + hc(e_pose, labels, modality)
    local = compute_losses(out, LABELS, MODALITY, target, w, cfg)
    assert losses["hctri"].item() == pytest.approx(global_h.item(), rel=1e-6)
    assert abs(global_h.item() - local["hctri"].item()) > 1e-3          # the other share changes the term
    assert losses["total"].item() == pytest.approx((local["total"] + cfg.beta * (global_h - local["hctri"])).item(),
                                                   rel=1e-6)
    losses["total"].backward()
    ref = leaf_outputs()
    before = compute_losses(ref, LABELS, MODALITY, target, w, cfg)
    (r_id, r_pose), labels, modality = gather([ref.id_embeddings, ref.pose_embeddings], LABELS, MODALITY)
    patched = before["total"] + cfg.beta * (hc(r_id, labels, modality) + hc(r_pose, labels, modality) - before["hctri"])
    patched.backward()
    for got, want in ((out.id_embeddings, ref.id_embeddings), (out.pose_embeddings, ref.pose_embeddings)):
        assert got.grad.abs().max() > 0
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-5, atol=1e-8)
