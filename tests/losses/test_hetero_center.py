"""Hetero-center triplet loss (eqs. 18-20): golden values, brute force, invariances."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from vireid.losses import HeteroCenterTripletLoss


def brute_force(feats: torch.Tensor, labels: torch.Tensor, modality: torch.Tensor, margin: float) -> float:
    """Plain-Python eq. 19 over identities, mean over the 2P centers."""
    f = feats.double().tolist()
    ids = sorted(set(labels.tolist()))
    centers = {}
    for i in ids:
        for m in (0, 1):
            rows = [f[k] for k in range(len(f)) if labels[k] == i and modality[k] == m]
            centers[(i, m)] = [sum(col) / len(rows) for col in zip(*rows)]

    def dist(a, b):
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))

    terms = []
    for i in ids:
        for m in (0, 1):
            c = centers[(i, m)]
            pos = dist(c, centers[(i, 1 - m)])
            neg = min(dist(c, centers[(j, mm)]) for j in ids if j != i for mm in (0, 1))
            terms.append(max(0.0, margin + pos - neg))
    return sum(terms) / len(terms)


def random_batch(seed: int, p: int = 4, k: int = 3, d: int = 8):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randperm(100, generator=g)[:p]
    labels = ids.repeat_interleave(k).repeat(2)
    modality = torch.arange(2).repeat_interleave(p * k)
    # identity-dependent means so that hinges are neither all zero nor all active
    means = torch.randn(p, d, generator=g) * 0.4
    feats = means.repeat_interleave(k, 0).repeat(2, 1) + torch.randn(2 * p * k, d, generator=g) * 0.5
    return feats, labels, modality


@pytest.mark.shared
def test_golden(golden_dir):
    data = np.load(golden_dir / "hctri_1000.npz")
    loss = HeteroCenterTripletLoss(margin=float(data["margin"]))
    cases = sorted({k.split("_")[0] for k in data.files if k.startswith("case")})
    assert cases, "no cases in the golden file"
    for case in cases:
        got = loss(
            torch.from_numpy(data[f"{case}_feats"]),
            torch.from_numpy(data[f"{case}_labels"]),
            torch.from_numpy(data[f"{case}_modality"]),
        )
        assert got.item() == pytest.approx(float(data[f"{case}_loss_mean"]), rel=1e-5, abs=1e-6), case


@pytest.mark.shared
def test_sum_is_two_p_times_mean(golden_dir):
    data = np.load(golden_dir / "hctri_1000.npz")
    labels = torch.from_numpy(data["case1_labels"])
    args = (torch.from_numpy(data["case1_feats"]), labels, torch.from_numpy(data["case1_modality"]))
    two_p = 2 * labels.unique().numel()
    total = HeteroCenterTripletLoss(reduction="sum")(*args)
    assert total.item() == pytest.approx(two_p * float(data["case1_loss_mean"]), rel=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force(seed):
    feats, labels, modality = random_batch(seed)
    got = HeteroCenterTripletLoss(0.3)(feats, labels, modality).item()
    want = brute_force(feats, labels, modality, 0.3)
    assert want > 0
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_permutation_invariance():
    feats, labels, modality = random_batch(7, p=5, k=2)
    loss = HeteroCenterTripletLoss()
    ref = loss(feats, labels, modality)
    for seed in range(4):
        perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        assert loss(feats[perm], labels[perm], modality[perm]).item() == pytest.approx(ref.item(), rel=1e-6)
    # Relabelling identities (any integers) changes nothing either.
    relabel = {int(v): 1000 - 7 * i for i, v in enumerate(labels.unique())}
    labels2 = torch.tensor([relabel[int(v)] for v in labels])
    assert loss(feats, labels2, modality).item() == pytest.approx(ref.item(), rel=1e-6)


def test_stripes_are_summed():
    parts = [random_batch(s) for s in range(3)]
    labels, modality = parts[0][1], parts[0][2]
    stacked = torch.stack([p[0] for p in parts], dim=1)  # [B, 3, d]
    loss = HeteroCenterTripletLoss()
    expected = sum(loss(p[0], labels, modality).item() for p in parts)
    assert loss(stacked, labels, modality).item() == pytest.approx(expected, rel=1e-6)


def test_well_separated_is_zero_and_margin_matters():
    # Two identities, modalities coincide, identities 10 apart: every hinge is 0.
    feats = torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [10.0, 0.0]])
    labels = torch.tensor([1, 1, 2, 2])
    modality = torch.tensor([0, 1, 0, 1])
    assert HeteroCenterTripletLoss(0.3)(feats, labels, modality).item() == 0.0
    # Hand value: margin 12 > 10 -> each of 4 hinges is 12 + 0 - 10 = 2.
    assert HeteroCenterTripletLoss(12.0)(feats, labels, modality).item() == pytest.approx(2.0)


def test_gradient_finite_with_coincident_centers():
    feats = torch.zeros(4, 3, requires_grad=True)
    loss = HeteroCenterTripletLoss()(feats, torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    assert loss.item() == pytest.approx(0.3)
    assert torch.isfinite(feats.grad).all()


def test_missing_counterpart_is_skipped():
    feats, labels, modality = random_batch(3, p=3, k=2)
    keep = ~((labels == labels[0]) & (modality == 1))  # identity 0 has no IR samples
    got = HeteroCenterTripletLoss()(feats[keep], labels[keep], modality[keep])
    assert torch.isfinite(got)


def test_bad_arguments():
    with pytest.raises(ValueError, match="reduction"):
        HeteroCenterTripletLoss(reduction="max")
    with pytest.raises(ValueError, match="margin"):
        HeteroCenterTripletLoss(margin=-1)
    with pytest.raises(ValueError, match="labels"):
        HeteroCenterTripletLoss()(torch.randn(4, 3), torch.zeros(3), torch.zeros(4))


# ---------------------------------------------------------------- one grouping for all stripes, no syncs
def per_stripe_reference(feats, labels, modality, margin, reduction):
    """Eq. 19 stripe by stripe with the centres found by ``unique`` (the straightforward,
    synchronising form): the fixed-slot implementation must give the same values and gradients."""
    def one(f):
        keys = torch.stack([labels.long(), modality.long()], dim=1)
        uniq, inverse = torch.unique(keys, dim=0, return_inverse=True)
        sums = f.new_zeros(uniq.shape[0], f.shape[1]).index_add(0, inverse, f)
        centers = sums / torch.bincount(inverse, minlength=uniq.shape[0]).to(f.dtype)[:, None]
        c_lab, c_mod = uniq[:, 0], uniq[:, 1]
        sq = (centers * centers).sum(1)
        dist = (sq[:, None] + sq[None, :] - 2.0 * centers @ centers.t()).clamp_min(1e-12).sqrt()
        same = c_lab[:, None] == c_lab[None, :]
        pos, neg = same & (c_mod[:, None] != c_mod[None, :]), ~same
        valid = pos.any(1) & neg.any(1)
        if not bool(valid.any()):
            return f.sum() * 0.0
        hinge = torch.relu(margin + (dist * pos).sum(1) - dist.masked_fill(~neg, float("inf")).min(1).values)[valid]
        return hinge.mean() if reduction == "mean" else hinge.sum()
    return sum(one(feats[:, p]) for p in range(feats.shape[1]))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("seed", range(4))
def test_values_and_gradients_match_the_per_stripe_form(seed, reduction):
    g = torch.Generator().manual_seed(seed)
    b = 24
    labels = torch.randint(0, 5, (b,), generator=g) * 37 + 1000         # arbitrary ids, any order
    modality = torch.randint(0, 2, (b,), generator=g)                  # some ids miss a modality
    feats = (torch.randn(b, 3, 16, generator=g) * 0.5).requires_grad_()
    ref_feats = feats.detach().clone().requires_grad_()
    loss = HeteroCenterTripletLoss(0.3, reduction)(feats, labels, modality)
    ref = per_stripe_reference(ref_feats, labels, modality, 0.3, reduction)
    assert ref.item() > 0
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    loss.backward()
    ref.backward()
    torch.testing.assert_close(feats.grad, ref_feats.grad, rtol=1e-4, atol=1e-6)


def test_no_valid_center_is_a_zero_with_a_graph():
    feats = torch.randn(4, 2, 3, requires_grad=True)
    loss = HeteroCenterTripletLoss()(feats, torch.tensor([5, 5, 5, 5]), torch.tensor([0, 1, 0, 1]))
    loss.backward()                                          # one identity: no negative anywhere
    assert loss.item() == 0.0 and torch.equal(feats.grad, torch.zeros_like(feats))


def test_no_host_device_synchronisation():
    from tests.syncs import SyncRecorder

    feats, labels, modality = random_batch(5, p=4, k=3, d=8)
    stripes = torch.stack([feats, feats.flip(1), feats * 2], dim=1).requires_grad_()   # [B, 3, d]
    with SyncRecorder() as rec:
        loss = HeteroCenterTripletLoss()(stripes, labels, modality)
        loss.backward()
    assert rec.syncs == []
    assert loss.item() > 0
