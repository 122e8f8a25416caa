"""The Refinement Module's random start (``model.pose_init: null``): GCCPM's own (PyTorch's
per-layer default) initialisation, so that its un-normalised heatmap head starts under
momentum SGD's stability limit at the paper's lr 0.01 and pose weight 5 (docs/model.md, "Training
from random weights"). With Xavier there (``refinement_init='scheme'``) it starts over the
limit: the reported "loss 'pose' is inf" at step 5."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vireid.model import ModelConfig, PoseVIReIDNet
from vireid.model.init import gccpm_init
from vireid.model.pose_branch import PoseEstimationBranch

LR, MOMENTUM, LAMBDA = 0.01, 0.9, 5.0          # sysu.yaml
LIMIT = 2 * (1 + MOMENTUM)                     # heavy-ball SGD diverges on a quadratic past lr * curvature = 3.8


def _branch(refinement_init: str, seed: int = 0) -> PoseEstimationBranch:
    torch.manual_seed(seed)
    model = PoseVIReIDNet(ModelConfig(backbone="resnet18", num_classes=5, refinement_init=refinement_init))
    return model.pose_branch.train()


def head_curvature(branch: PoseEstimationBranch, f_s: torch.Tensor, lam: float = LAMBDA) -> float:
    """Largest eigenvalue of the mean-squared-error pose loss's Hessian in the weights and bias of the
    conv that outputs the heatmaps: ``2 * lam * eig_max(E[[h, 1][h, 1]^T])``, ``h`` that conv's input
    at every pixel (the loss is linear in those weights, so this is exact for that block)."""
    store = {}
    last = branch.refinement.heatmaps[-1][0]
    handle = last.register_forward_hook(lambda mod, inp, out: store.update(h=inp[0].detach()))
    with torch.no_grad():
        branch(f_s)
    handle.remove()
    h = store["h"]
    b, c, hh, ww = h.shape
    z = torch.cat([h, torch.ones(b, 1, hh, ww)], 1).permute(1, 0, 2, 3).reshape(c + 1, -1)
    return 2 * lam * float(torch.linalg.eigvalsh(z @ z.T / z.shape[1])[-1])


@pytest.fixture(scope="module")
def f_s() -> torch.Tensor:
    """Layer2-like features of a 288x144 batch of 8 (ResNet-18: 128 channels at 36x18)."""
    return torch.relu(torch.randn(8, 128, 36, 18, generator=torch.Generator().manual_seed(1)))


def test_random_refinement_module_starts_under_the_stability_limit(f_s):
    for seed in range(3):
        assert LR * head_curvature(_branch("gccpm", seed), f_s) < LIMIT / 2, seed


def test_xavier_refinement_module_starts_over_the_stability_limit(f_s):
    # the old start, kept as refinement_init='scheme': the reason it was replaced
    assert LR * head_curvature(_branch("scheme"), f_s) > LIMIT


def test_gccpm_init_is_pytorchs_default_and_spares_the_layers_around_it():
    branch = _branch("gccpm")
    convs = [m for m in branch.refinement.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) > 10
    for m in convs:
        bound = 1 / math.sqrt(nn.init._calculate_fan_in_and_fan_out(m.weight)[0])   # kaiming_uniform(a=sqrt(5))
        assert m.weight.abs().max() <= bound + 1e-7
        if m.weight.numel() >= 4000:
            assert abs(m.weight.var().item() / (bound * bound / 3) - 1) < 0.15
    xavier = _branch("scheme")
    torch.manual_seed(0)
    assert not torch.equal(branch.refinement.heatmaps[-1][0].weight, xavier.refinement.heatmaps[-1][0].weight)
    w = branch.conv1[0].weight                                   # Conv1 keeps the paper's Xavier
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
    assert abs(w.var().item() / (6.0 / (fan_in + fan_out) / 3) - 1) < 0.15
    seq = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    nn.init.constant_(seq[1].weight, 3.0)
    assert gccpm_init(seq) == 2 and torch.equal(seq[1].weight, torch.ones(4))
    with pytest.raises(ValueError, match="refinement_init must be one of"):
        ModelConfig(refinement_init="xavier")
