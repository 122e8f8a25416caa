"""The augmentation steps run on the device for a whole batch (vireid/inputs/batch_steps.py):
normalisation with erasing and the stored heatmaps' shift equal the CPU path bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.inputs.test_transforms import GEOM, HM, SIZE, dot_sample
from vireid.cache.geometry import Geometry
from vireid.inputs.transforms import TrainTransform, TransformConfig
from vireid.pose.joints import NUM_JOINTS


@pytest.mark.parametrize("seed", range(6))
def test_device_normalise_equals_the_cpu_path(seed):
    """Same draws, same geometry; normalise_batch on the batch gives the CPU path's image."""
    from vireid.inputs.transforms import normalise_batch

    cfg = TransformConfig(GEOM, pad=4, erase_p=0.7)
    rng = np.random.default_rng(seed)
    samples = []
    for k in range(4):  # textured images (every pixel value matters) with a joint each
        s = dot_sample(int(rng.integers(0, SIZE[1])), int(rng.integers(0, SIZE[0])))
        s["image"] = rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)
        samples.append(s)
    cpu = [TrainTransform(cfg)(s, np.random.default_rng(seed * 100 + k)) for k, s in enumerate(samples)]
    dev = [TrainTransform(cfg, device_normalise=True)(s, np.random.default_rng(seed * 100 + k))
           for k, s in enumerate(samples)]
    assert all(d["image"].dtype == torch.uint8 and d["image"].shape == (3, 64, 32) for d in dev)
    images = normalise_batch(torch.stack([d["image"] for d in dev]), torch.stack([d["erase"] for d in dev]), cfg)
    for c, d, img in zip(cpu, dev, images):
        torch.testing.assert_close(img, c["image"], rtol=0, atol=1e-6)
        assert torch.equal(c["heatmaps"], d["heatmaps"]) and torch.equal(c["joint_weights"], d["joint_weights"])
    erased = [d["erase"] for d in dev if d["erase"][2] > 0]
    assert erased, "no sample was erased: the erasing path went untested"


def test_normalise_batch_erases_exactly_the_box():
    from vireid.inputs.transforms import normalise_batch

    cfg = TransformConfig(Geometry((8, 4), 4))
    images = torch.full((2, 3, 8, 4), 255, dtype=torch.uint8)
    out = normalise_batch(images, torch.tensor([[1, 2, 3, 1], [0, 0, 0, 0]]), cfg)
    white = (1.0 - torch.tensor(cfg.mean)) / torch.tensor(cfg.std)
    fill = torch.tensor(cfg.erase_fill)
    box = torch.zeros(8, 4, dtype=torch.bool)
    box[1:4, 2:3] = True
    for c in range(3):
        torch.testing.assert_close(out[0, c][box], fill[c].expand(3), rtol=0, atol=1e-6)
        torch.testing.assert_close(out[0, c][~box], white[c].expand(29), rtol=0, atol=1e-5)
        torch.testing.assert_close(out[1, c], white[c].expand(8, 4), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        normalise_batch(images.float(), None, cfg)
    with pytest.raises(ValueError, match="erase must be"):
        normalise_batch(images, torch.zeros(3, 4), cfg)


# ------------------------------------------------------------ heatmaps as stored, shifted on the device
def _random_samples(n: int, seed: int, hw=(48, 24), stride: int = 4):
    data = np.random.default_rng(seed)
    maps = data.integers(0, 256, (n, NUM_JOINTS, hw[0] // stride, hw[1] // stride)).astype(np.uint8)
    maps[maps < 160] = 0                                   # sparse, like Gaussians
    return [{"image": data.integers(0, 256, (*hw, 3), dtype=np.uint8), "heatmaps": m,
             "confidence": data.random(NUM_JOINTS, dtype=np.float32)} for m in maps]


@pytest.mark.parametrize("pad", [10, 3])
def test_stored_heatmaps_shifted_on_the_device_are_the_float_maps(pad):
    """heatmaps='stored': uint8 maps (a quarter of the bytes) and their shift; shift_heatmaps
    on the batch gives the workers' float32 maps bit for bit, the rest unchanged."""
    from vireid.inputs.transforms import shift_heatmaps

    cfg = TransformConfig(Geometry((48, 24), 4), pad=pad, flip_p=0.5, erase_p=0.5)
    samples = _random_samples(40, pad)
    floats = [TrainTransform(cfg, device_normalise=True)(s, np.random.default_rng(k)) for k, s in enumerate(samples)]
    stored = [TrainTransform(cfg, device_normalise=True, heatmaps="stored")(s, np.random.default_rng(k))
              for k, s in enumerate(samples)]
    assert all(s["heatmaps"].dtype == torch.uint8 for s in stored)
    maps = shift_heatmaps(torch.stack([s["heatmaps"] for s in stored]),
                          torch.stack([s["heatmap_shift"] for s in stored]), cfg)
    assert maps.dtype == torch.float32 and torch.equal(maps, torch.stack([f["heatmaps"] for f in floats]))
    shifts = torch.stack([s["heatmap_shift"] for s in stored])
    assert (shifts % 4 != 0).any() and (shifts % 4 == 0).any()        # fractional and whole-cell shifts seen
    for f, s in zip(floats, stored):
        for key in ("image", "erase", "joint_weights"):
            assert torch.equal(f[key], s[key]), key


def test_no_heatmaps_when_no_loss_uses_them():
    cfg = TransformConfig(Geometry((48, 24), 4))
    sample = _random_samples(1, 0)[0]
    full = TrainTransform(cfg, device_normalise=True)(sample, np.random.default_rng(1))
    bare = TrainTransform(cfg, device_normalise=True, heatmaps="none")(sample, np.random.default_rng(1))
    assert set(bare) == {"image", "erase"}
    assert torch.equal(bare["image"], full["image"]) and torch.equal(bare["erase"], full["erase"])
    with pytest.raises(ValueError, match="heatmaps must be one of"):
        TrainTransform(cfg, heatmaps="half")


def test_a_batch_copies_no_constant_to_the_device_and_waits_for_no_copy():
    """After the first batch, normalise_batch and shift_heatmaps copy only the batch's own boxes
    and shifts to the device, without waiting ('meta' stands in for a GPU)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from vireid.inputs.transforms import normalise_batch, shift_heatmaps

    class Copies(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.log = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func.overloadpacket is torch.ops.aten._to_copy and args[0].device != kwargs.get("device", args[0].device):
                self.log.append(bool(kwargs.get("non_blocking", False)))
            return func(*args, **kwargs)

    cfg = TransformConfig(GEOM)
    dev = torch.device("meta")
    images = torch.empty(4, 3, *SIZE, dtype=torch.uint8, device=dev)
    maps = torch.empty(4, NUM_JOINTS, *HM, dtype=torch.uint8, device=dev)
    boxes, shifts = torch.zeros(4, 4, dtype=torch.int32), torch.zeros(4, 2, dtype=torch.int32)
    normalise_batch(images, boxes, cfg)                      # the first batch puts the constants there
    shift_heatmaps(maps, shifts, cfg)
    with Copies() as rec:
        out = normalise_batch(images, boxes, cfg)
        got = shift_heatmaps(maps, shifts, cfg)
    assert rec.log == [True, True]                           # the boxes and the shifts, not waited for
    assert out.shape == (4, 3, *SIZE) and got.shape == (4, NUM_JOINTS, *HM) and got.dtype == torch.float32


def test_unmoved_stored_maps_decode_as_the_cache_does():
    from vireid.cache.format import dequantize_heatmaps
    from vireid.inputs.transforms import shift_heatmaps

    maps = np.random.default_rng(2).integers(0, 256, (3, NUM_JOINTS, *HM)).astype(np.uint8)
    got = shift_heatmaps(torch.from_numpy(maps), torch.tensor([[0, 0], [4, 0], [0, -8]]), TransformConfig(GEOM))
    assert torch.equal(got[0], torch.from_numpy(dequantize_heatmaps(maps[0])))
    # moved: x * float32(1/255) as flip_shift_maps (within an ulp of x / 255)
    torch.testing.assert_close(got[1, :, 1:], torch.from_numpy(dequantize_heatmaps(maps[1]))[:, :-1],
                               rtol=1e-6, atol=0)                                             # one cell down
    assert torch.equal(got[1, :, 0], torch.zeros(NUM_JOINTS, HM[1]))
    torch.testing.assert_close(got[2, :, :, :-2], torch.from_numpy(dequantize_heatmaps(maps[2]))[:, :, 2:],
                               rtol=1e-6, atol=0)                                             # two cells left
