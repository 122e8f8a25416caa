"""The modality-specific stems: the routing by a host-known RGB count, memory format, syncs."""
from __future__ import annotations

import pytest
import torch

from tests.model.helpers import INPUT_HW, distinct_stems, mixed_batch, small_config
from tests.syncs import SyncRecorder
from vireid.losses import compute_losses
from vireid.model import PoseVIReIDNet, leading_rgb_count
from vireid.pose.joints import NUM_JOINTS


@pytest.fixture(scope="module")
def module():
    return distinct_stems(3)


def grouped_batch(n_rgb: int = 3, n_ir: int = 2):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n_rgb + n_ir, 3, *INPUT_HW, generator=g), torch.tensor([0] * n_rgb + [1] * n_ir)


def test_leading_rgb_count():
    assert leading_rgb_count(torch.tensor([0, 0, 0, 1, 1])) == 3
    assert leading_rgb_count([1, 1]) == 0 and leading_rgb_count([0, 0]) == 2
    assert leading_rgb_count(torch.tensor([0, 1, 0, 1])) is None           # interleaved
    assert leading_rgb_count(torch.tensor([0, 2])) is None                 # not a modality


def test_host_count_routes_like_each_stem(module):
    images, modality = grouped_batch()
    with torch.no_grad():
        out = module(images, modality, rgb_count=3)
        torch.testing.assert_close(out, module(images, modality))           # the general path
        torch.testing.assert_close(out[:3], module.rgb(images[:3]))
        torch.testing.assert_close(out[3:], module.ir(images[3:]))
    with pytest.raises(ValueError, match="rgb_count must be in"):
        module(images, modality, rgb_count=6)


@pytest.mark.parametrize("interleaved", [False, True])
def test_channels_last_in_channels_last_out(module, interleaved):
    images, modality, _ = mixed_batch()
    if not interleaved:
        order = torch.argsort(modality, stable=True)
        images, modality = images[order], modality[order]
    images = images.contiguous(memory_format=torch.channels_last)
    module = module.to(memory_format=torch.channels_last)
    with torch.no_grad():
        out = module(images, modality, rgb_count=leading_rgb_count(modality))
    module.to(memory_format=torch.contiguous_format)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_the_general_path_reads_the_flags_once(module):
    images, modality, _ = mixed_batch()
    with SyncRecorder() as rec, torch.no_grad():
        module(images, modality)
    assert len(rec.syncs) <= 1, rec.syncs


def test_a_training_step_with_the_host_count_never_waits_for_the_device():
    """Forward, eq. 21's losses and backward of the full model: no synchronising operation."""
    torch.manual_seed(0)
    model = PoseVIReIDNet(small_config()).train()
    images, modality = grouped_batch(4, 4)
    labels = torch.tensor([0, 0, 3, 3, 0, 0, 3, 3])
    hm = model.heatmap_size()
    rgb_count = leading_rgb_count(modality)            # from the batch's host copy, before the device
    with SyncRecorder() as rec:
        out = model(images, modality, rgb_count=rgb_count)
        losses = compute_losses(out, labels, modality, torch.rand(8, NUM_JOINTS, *hm), torch.ones(8, NUM_JOINTS))
        losses["total"].backward()
    assert rec.syncs == []
    assert set(losses) == {"id", "hctri", "pose", "kd", "total"}
