"""KD loss (eq. 15) and identity loss (eq. 17)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vireid.losses import identity_loss, kd_loss


def test_kd_zero_when_students_agree():
    torch.manual_seed(0)
    t = torch.randn(4, 7)
    s = t[:, None].repeat(1, 6, 1)
    assert kd_loss(t, s).item() == pytest.approx(0.0, abs=1e-6)
    # Same distributions from shifted logits: still zero.
    assert kd_loss(t, s + 3.0).item() == pytest.approx(0.0, abs=1e-5)


def test_kd_positive_and_hand_value():
    torch.manual_seed(1)
    t = torch.randn(3, 5)
    s = torch.randn(3, 2, 5)
    got = kd_loss(t, s).item()
    assert got > 0
    p = F.softmax(t, -1)
    want = sum(
        (p[i] * (p[i].log() - F.log_softmax(s[i, j], -1))).sum().item() for i in range(3) for j in range(2)
    ) / 3  # eq. 15: sum over stripes, 1/M
    assert got == pytest.approx(want, rel=1e-5)


def test_kd_direction_is_teacher_first():
    t = torch.tensor([[2.0, 0.0, -1.0]])
    s = torch.tensor([[0.0, 1.0, 0.5]])
    pt, ps = F.softmax(t, -1), F.softmax(s, -1)
    kl_ts = (pt * (pt / ps).log()).sum().item()
    kl_st = (ps * (ps / pt).log()).sum().item()
    assert abs(kl_ts - kl_st) > 1e-3
    assert kd_loss(t, s).item() == pytest.approx(kl_ts, rel=1e-5)


def test_kd_temperature_and_detach():
    t = torch.randn(2, 4, requires_grad=True)
    s = torch.randn(2, 3, 4, requires_grad=True)
    base = kd_loss(t, s, temperature=1.0)
    warm = kd_loss(t, s, temperature=4.0)
    assert warm.item() != pytest.approx(base.item())
    kd_loss(t, s, detach_teacher=True).backward()
    assert t.grad is None and s.grad is not None
    kd_loss(t, s).backward()
    assert t.grad is not None and t.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(t, s, temperature=0.0)


def test_identity_loss_sums_stripes():
    torch.manual_seed(2)
    logits = torch.randn(4, 6, 10)
    labels = torch.tensor([1, 3, 3, 9])
    want = sum(F.cross_entropy(logits[:, j], labels).item() for j in range(6))
    assert identity_loss(logits, labels).item() == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError):
        identity_loss(logits[:, 0], labels)
