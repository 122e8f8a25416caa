"""The model against the paper's text (issue: fidelity): where the features are taken,
the teacher's head, and the Xavier initialisation of Section IV-A."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.model.helpers import mixed_batch, small_config
from vireid.model import HierarchicalFeatureConstraint, PoseVIReIDNet
from vireid.model.init import xavier_init
from vireid.model.pcb import StripeHead


def test_stripe_embedding_is_the_bn_output_and_the_activation_feeds_only_the_classifier():
    torch.manual_seed(0)
    head = StripeHead(12, 6, 4, leaky_slope=0.1).train()
    x = torch.randn(16, 12)
    emb, logits = head(x)
    fc, bn = head.embed[0], head.embed[1]
    bn_out = F.batch_norm(fc(x), None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
    torch.testing.assert_close(emb, bn_out)
    assert (emb < 0).any(), "a BN output has negative values; a LeakyReLU output would be scaled by 0.1 there"
    torch.testing.assert_close(logits, F.linear(F.leaky_relu(bn_out, 0.1), head.classifier.weight,
                                                head.classifier.bias))


def test_network_features_and_triplet_input_are_taken_before_the_activation():
    torch.manual_seed(0)
    model = PoseVIReIDNet(small_config("full"))
    images, modality, _ = mixed_batch()
    captured = []
    hook = model.reid_pcb.stripes[2].embed[1].register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    model.train()
    out = model(images, modality)
    torch.testing.assert_close(out.id_embeddings[:, 2], captured[-1])     # the HC-tri input (eq. 11)
    model.eval()
    with torch.no_grad():
        feats = model(images, modality)
    e = model.config.stripe_dim
    torch.testing.assert_close(feats["f_id"][:, 2 * e:3 * e], F.normalize(captured[-1], dim=1))  # eqs. 12-13
    assert (captured[-1] < 0).any()
    hook.remove()


def test_teacher_applies_leaky_relu_before_its_classifier():
    torch.manual_seed(0)
    teacher = HierarchicalFeatureConstraint(8, 8, 5, embed_dim=6, leaky_slope=0.1).eval()
    teacher.embed[1].running_mean.normal_()                      # make the BN output take both signs
    a, b = torch.randn(3, 8, 4, 2), torch.randn(3, 8, 4, 2)
    pooled = torch.cat([a, b], 1).mean((2, 3))
    fc, bn = teacher.embed[0], teacher.embed[1]
    z = bn(fc(pooled))
    assert (z < 0).any()
    expected = teacher.classifier(F.leaky_relu(z, 0.1))
    torch.testing.assert_close(teacher(a, b), expected)


def _xavier_bound(w: torch.Tensor) -> float:
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
    return math.sqrt(6.0 / (fan_in + fan_out))


def _new_layers(model: PoseVIReIDNet, refinement: bool = True):
    for root in (model.pose_branch, model.reid_pcb, model.pose_pcb, model.hfc):
        for name, m in root.named_modules():
            if not refinement and name.startswith("refinement"):
                continue
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                yield name, m


@pytest.mark.parametrize("refinement_init", ["gccpm", "scheme"])
def test_layers_outside_the_backbone_are_xavier_initialised(refinement_init):
    # the Refinement Module is Xavier only with refinement_init='scheme' (default 'gccpm': its own start)
    torch.manual_seed(0)
    model = PoseVIReIDNet(small_config("full", refinement_init=refinement_init))
    layers = list(_new_layers(model, refinement=refinement_init == "scheme"))
    assert len(layers) > 20
    for name, m in layers:
        a = _xavier_bound(m.weight)
        w = m.weight.detach()
        assert w.abs().max() <= a + 1e-7, name
        if w.numel() >= 2000:                                    # U(-a, a) has variance a^2 / 3
            assert abs(w.var().item() / (a * a / 3) - 1) < 0.15, name
        if m.bias is not None:
            assert not m.bias.detach().any(), name
    # the classifiers: N(0, 0.001) before; Xavier's spread is far wider
    assert model.reid_pcb.stripes[0].classifier.weight.std() > 0.01


def test_default_scheme_keeps_the_earlier_initialisation():
    torch.manual_seed(0)
    model = PoseVIReIDNet(small_config("full", init="default"))
    std = model.reid_pcb.stripes[0].classifier.weight.std().item()
    assert 0.0005 < std < 0.002
    fc = model.hfc.embed[0].weight                                # Kaiming normal, fan-out
    assert abs(fc.std().item() / math.sqrt(2.0 / fc.shape[0]) - 1) < 0.1
    with pytest.raises(ValueError, match="init must be one of"):
        small_config("full", init="he")


def test_backbone_keeps_torchvision_init():
    torch.manual_seed(0)
    model = PoseVIReIDNet(small_config("full"))
    w = model.reid_branch.layer4[0].conv1.weight                 # Kaiming normal fan-out, not Xavier
    fan_out = w.shape[0] * w.shape[2] * w.shape[3]
    assert abs(w.std().item() / math.sqrt(2.0 / fan_out) - 1) < 0.1


def test_xavier_init_counts_and_resets_batchnorm():
    seq = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    with torch.no_grad():
        seq[1].weight.fill_(3.0)
        seq[1].bias.fill_(1.0)
    assert xavier_init([seq]) == 2
    assert torch.equal(seq[1].weight, torch.ones(4)) and not seq[1].bias.any()




@pytest.mark.parametrize("scheme", ["xavier", "default"])
def test_small_heatmap_head_init_starts_the_output_conv_near_zero(scheme):
    torch.manual_seed(0)
    small = PoseVIReIDNet(small_config("full", init=scheme, heatmap_channels=16, heatmap_head_init="small"))
    out = small.pose_branch.refinement.heatmaps[-1][0]
    assert 0.0007 < out.weight.std().item() < 0.0013 and not out.bias.detach().any()
    hidden = small.pose_branch.refinement.heatmaps[0][0]           # the layer before keeps the scheme
    assert hidden.weight.std().item() > 0.01
    torch.manual_seed(0)
    plain = PoseVIReIDNet(small_config("full", init=scheme, heatmap_channels=16))
    assert plain.pose_branch.refinement.heatmaps[-1][0].weight.std().item() > 0.01
    images, modality, _ = mixed_batch()
    small.eval()
    assert small.predict_heatmaps(images, modality).abs().max().item() < 0.1   # near-zero maps at the start
    with pytest.raises(ValueError, match="heatmap_head_init must be one of"):
        small_config("full", heatmap_head_init="zeros")
