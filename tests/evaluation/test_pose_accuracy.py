"""vireid.evaluation.pose_accuracy: the pose branch's PCKh per modality on cache entries."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.engine.test_trainer import cache_dir  # noqa: F401 - module-scoped fixture
from vireid.cache.reader import HeatmapCache
from vireid.evaluation.pose_accuracy import branch_pckh
from vireid.model import ModelConfig, PoseVIReIDNet

HW = (96, 48)


@pytest.fixture(scope="module")
def cache(cache_dir) -> HeatmapCache:  # noqa: F811 - the trainer tests' tiny SYSU cache (96x48, 8 ids)
    return HeatmapCache(cache_dir)


def _model(channels: int) -> PoseVIReIDNet:
    torch.manual_seed(0)
    return PoseVIReIDNet(ModelConfig(backbone="resnet18", num_classes=4, input_size=HW,
                                     stripe_dim=16, teacher_dim=32, pose_channels=32, deconv_channels=16,
                                     refine_channels=16, heatmap_channels=channels)).eval()


def _targets(cache: HeatmapCache, indices):
    """The cache's maps and confidences, as the evaluation reads them (float, [N, 16, h, w])."""
    from vireid.inputs.dataset import CacheDataset
    from vireid.cache.geometry import Geometry
    from vireid.inputs.transforms import EvalTransform, TransformConfig

    ds = CacheDataset(cache, indices=list(indices), transform=EvalTransform(TransformConfig(Geometry(HW, 4))),
                      label_map=None)
    return [ds[i] for i in range(len(ds))]


def test_a_branch_that_reproduces_its_targets_scores_100_in_both_modalities(cache, monkeypatch):
    indices = list(range(len(cache)))
    samples = _targets(cache, indices)
    model = _model(16)
    queue = [torch.stack([s["heatmaps"] for s in samples[i:i + 5]]) for i in range(0, len(samples), 5)]
    monkeypatch.setattr(model, "predict_heatmaps", lambda images, modality: queue.pop(0))
    got = branch_pckh(model, cache, indices, torch.device("cpu"), batch_size=5)
    assert set(got) == {"rgb", "ir"}
    assert got["rgb"].average == 100 and got["ir"].average == 100
    mods = np.array([int(s["modality"]) for s in samples])
    assert got["rgb"].images == int((mods == 0).sum()) and got["ir"].images == int((mods == 1).sum())


def test_a_flat_prediction_scores_low_and_a_merged_branch_is_not_scored(cache, monkeypatch):
    indices = list(range(len(cache)))
    model = _model(16)
    monkeypatch.setattr(model, "predict_heatmaps",
                        lambda images, modality: torch.zeros(images.shape[0], 16, HW[0] // 4, HW[1] // 4))
    got = branch_pckh(model, cache, indices, torch.device("cpu"), batch_size=8)
    assert got["rgb"].average < 20 and got["ir"].average < 20      # every joint at the top-left cell
    assert branch_pckh(_model(1), cache, indices, torch.device("cpu")) == {}


def test_the_real_branch_runs_on_cache_entries_and_stays_in_eval_mode_state(cache):
    model = _model(16).train()
    got = branch_pckh(model, cache, list(range(len(cache))), torch.device("cpu"), batch_size=8)
    assert 0 <= got["rgb"].average <= 100 and 0 <= got["ir"].average <= 100
    assert model.training                                             # the caller's mode is restored
    with pytest.raises(ValueError, match="no Pose Estimation branch"):
        PoseVIReIDNet(ModelConfig(backbone="resnet18", num_classes=4, input_size=HW,
                                  use_pose_branch=False, use_pose_loss=False, use_hfc=False)
                      ).predict_heatmaps(torch.zeros(1, 3, *HW), torch.zeros(1, dtype=torch.long))
