"""The target heatmaps a training step copies to the device: uint8 as stored (shifted there) on
an accelerator, none with the pose loss off, and the same training either way."""
from __future__ import annotations

import pytest
import torch

import vireid.engine.joint_loop as loop_mod
import vireid.engine.trainer as trainer_mod
from tests.engine.test_trainer import _steps, cache_dir, tiny_config  # noqa: F401 - module-scoped cache fixture
from vireid.data.manifest import Manifest
from vireid.cache.reader import HeatmapCache
from vireid.inputs.transforms import shift_heatmaps
from vireid.engine.train_data import build_loader, heatmap_mode, split_training_data
from vireid.engine.trainer import train
from vireid.model import ModalitySpecificModule


def _first_batch(cfg, cache_dir, heatmaps):  # noqa: F811
    cache = HeatmapCache(cache_dir)
    split = split_training_data(cfg, cache, Manifest.load(cache_dir / "manifest.json"), cache_dir)
    data = build_loader(cfg, cache, cache_dir, split, 0, 1, pin_memory=False, heatmaps=heatmaps)
    data.sampler.set_epoch(0)
    return next(iter(data.loader)), data


def test_heatmap_mode():
    assert heatmap_mode(True, torch.device("cuda", 0)) == "stored"
    assert heatmap_mode(True, torch.device("cpu")) == "float"
    assert heatmap_mode(False, torch.device("cuda", 0)) == "none" == heatmap_mode(False, torch.device("cpu"))
    # the release's erasing zeroes cells of the shifted maps: those are shifted in the workers
    assert heatmap_mode(True, torch.device("cuda", 0), "same") == "float"
    assert heatmap_mode(True, torch.device("cuda", 0), "independent") == "float"


def test_stored_maps_refuse_target_erasing():
    from vireid.inputs.transforms import TrainTransform, TransformConfig

    with pytest.raises(ValueError, match="cannot erase the targets"):
        TrainTransform(TransformConfig(erase_targets="same"), heatmaps="stored")


def test_the_loader_gives_uint8_maps_that_the_device_shifts_into_the_float_ones(cache_dir):  # noqa: F811
    cfg = tiny_config()
    stored, data = _first_batch(cfg, cache_dir, heatmap_mode(True, torch.device("cuda", 0)))
    floats, _ = _first_batch(cfg, cache_dir, "float")
    assert stored["heatmaps"].dtype == torch.uint8 and floats["heatmaps"].dtype == torch.float32
    assert stored["heatmaps"].nbytes * 4 == floats["heatmaps"].nbytes
    got = shift_heatmaps(stored["heatmaps"], stored["heatmap_shift"], data.transform)
    assert torch.equal(got, floats["heatmaps"])


def test_pose_loss_off_copies_no_heatmaps_and_the_stems_split_by_the_host_count(cache_dir, tmp_path,  # noqa: F811
                                                                                 monkeypatch):
    cfg = tiny_config("model.use_pose_loss=false", "epochs=1", "data.batches_per_epoch=2")
    batch, _ = _first_batch(cfg, cache_dir, heatmap_mode(False, torch.device("cuda", 0)))
    assert "heatmaps" not in batch and "joint_weights" not in batch
    seen, counts = [], []
    step, stems = loop_mod.JointLoop.train_step, ModalitySpecificModule.forward

    def spy(self, batch):
        seen.append(set(batch))
        return step(self, batch)

    def stems_spy(self, images, modality, rgb_count=None):
        counts.append(rgb_count)
        return stems(self, images, modality, rgb_count)
    monkeypatch.setattr(loop_mod.JointLoop, "train_step", spy)
    monkeypatch.setattr(ModalitySpecificModule, "forward", stems_spy)
    train(cfg, cache_dir, tmp_path / "run")
    assert len(seen) == 2 and all("heatmaps" not in keys and "image" in keys for keys in seen)
    assert all("pose" not in s for s in _steps(tmp_path / "run"))
    assert counts[:2] == [4, 4]        # 2 ids x 2 RGB first (the sampler's layout): split without a sync


def test_maps_shifted_on_the_device_train_exactly_as_in_the_workers(cache_dir, tmp_path, monkeypatch):  # noqa: F811
    """A tiny run with the accelerator's path (uint8 maps, shifted in the step) on the CPU logs
    the losses of the CPU's path (maps shifted in the loader)."""
    cfg = tiny_config("epochs=1", "data.batches_per_epoch=3")
    train(cfg, cache_dir, tmp_path / "float")
    monkeypatch.setattr(trainer_mod, "heatmap_mode", lambda use_pose_loss, device, erase_targets="none": "stored")
    train(cfg, cache_dir, tmp_path / "stored")
    keys = ("id", "hctri", "pose", "kd", "total")
    ref = [s[k] for s in _steps(tmp_path / "float") for k in keys]
    got = [s[k] for s in _steps(tmp_path / "stored") for k in keys]
    assert len(ref) == 3 * len(keys) and got == pytest.approx(ref, rel=1e-6, abs=1e-7)
