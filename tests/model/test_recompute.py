"""Activation checkpointing (vireid/model/recompute.py): the same step, fewer kept activations."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from vireid.model import PoseVIReIDNet
from vireid.model.recompute import RecomputedSequential, enable_activation_checkpointing

from .helpers import mixed_batch, small_config


def _step(model: PoseVIReIDNet, images, modality):
    """One training forward and backward with a loss that reaches every output."""
    out = model(images, modality)
    loss = out.id_logits.logsumexp(-1).mean() + out.pose_logits.logsumexp(-1).mean()
    loss = loss + out.teacher_logits.logsumexp(-1).mean() + out.heatmaps.square().mean()
    loss.backward()
    return loss.detach()


def _saved_bytes(model, images, modality) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(images, modality)
    return total


@pytest.fixture
def pair():
    torch.manual_seed(3)
    plain = PoseVIReIDNet(small_config("full")).train()
    recomputed = copy.deepcopy(plain)
    blocks = enable_activation_checkpointing(recomputed)
    assert blocks == 2 * 2 + 2 + 2 + 2 + 4       # resnet18: 2 stems x layer1, layer2, layer3, layer4, RM_F's 4 blocks
    return plain, recomputed


def test_same_loss_gradients_and_running_stats(pair):
    plain, recomputed = pair
    images, modality, _ = mixed_batch()
    loss_a = _step(plain, images, modality)
    loss_b = _step(recomputed, images, modality)
    assert torch.equal(loss_a, loss_b)
    grads_a = {n: p.grad for n, p in plain.named_parameters() if p.grad is not None}
    grads_b = {n: p.grad for n, p in recomputed.named_parameters() if p.grad is not None}
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 100
    for name, g in grads_a.items():
        torch.testing.assert_close(grads_b[name], g, rtol=1e-5, atol=1e-7, msg=name)
    # the recomputed forward would count every batch twice and move the running statistics again
    buffers_b = dict(recomputed.named_buffers())
    for name, buf in plain.named_buffers():
        assert torch.equal(buffers_b[name], buf), name


def test_keeps_fewer_activations(pair):
    plain, recomputed = pair
    images, modality, _ = mixed_batch()
    assert _saved_bytes(recomputed, images, modality) < 0.5 * _saved_bytes(plain, images, modality)


def test_state_dict_eval_and_pickle_unchanged(pair):
    plain, recomputed = pair
    assert list(plain.state_dict()) == list(recomputed.state_dict())
    assert isinstance(recomputed.reid_branch.layer4, RecomputedSequential)
    assert isinstance(recomputed.pose_branch.refinement.trunk, RecomputedSequential)
    images, modality, _ = mixed_batch()
    plain.eval(), recomputed.eval()
    with torch.no_grad():
        a, b = plain(images, modality), recomputed(images, modality)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    clone = pickle.loads(pickle.dumps(recomputed))
    assert isinstance(clone.modality_specific.rgb.layer1, RecomputedSequential)
    assert enable_activation_checkpointing(clone) == enable_activation_checkpointing(recomputed)  # idempotent


def test_baseline_without_pose_branch():
    model = PoseVIReIDNet(small_config("baseline"))
    assert enable_activation_checkpointing(model) == 2 * 2 + 2 + 2 + 2
    assert not any(isinstance(m, RecomputedSequential) and m is not None
                   for m in [getattr(model, "pose_branch", None)])
    assert all(type(m) is not nn.Sequential for m in [model.reid_branch.layer3, model.modality_shared.layer2])
