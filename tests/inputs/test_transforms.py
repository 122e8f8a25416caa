"""Paired augmentations: heatmap peaks follow the crop and the flip, erasing spares heatmaps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.inputs.reference_transforms import erase_cells_reference, flip_pair, shift_maps
from vireid.cache.geometry import Geometry
from vireid.inputs.transforms import EvalTransform, TrainTransform, TransformConfig
from vireid.pose.codec import HeatmapCodec, cell_centres
from vireid.pose.joints import JOINT_INDEX, NUM_JOINTS, flip_permutation

SIZE = (64, 32)
STRIDE = 4
HM = (SIZE[0] // STRIDE, SIZE[1] // STRIDE)
GEOM = Geometry(SIZE, STRIDE)
L_HIP, R_HIP = JOINT_INDEX["L_Hip"], JOINT_INDEX["R_Hip"]


def dot_sample(x: int, y: int, joint: int = L_HIP) -> dict:
    """A dark image with one bright pixel at (x, y) and joint ``joint``'s Gaussian at the same place."""
    image = np.full((*SIZE, 3), 20, np.uint8)
    image[y, x] = 255
    kps = np.full((NUM_JOINTS, 2), np.nan)
    kps[joint] = (x, y)
    weights = np.zeros(NUM_JOINTS)
    weights[joint] = 1.0
    maps, _ = HeatmapCodec(SIZE, STRIDE, sigma=3.0).encode(kps, weights)
    confidence = np.linspace(0.1, 0.9, NUM_JOINTS).astype(np.float32)
    return {"image": image, "heatmaps": maps, "confidence": confidence}


def peak_pixel(channel: torch.Tensor) -> tuple:
    """Input-pixel coordinates (x, y) of the centre of a map's argmax cell."""
    r, c = np.unravel_index(int(torch.argmax(channel)), channel.shape)
    return cell_centres(channel.shape[1], STRIDE)[c], cell_centres(channel.shape[0], STRIDE)[r]


def dot_pixel(image: torch.Tensor) -> tuple:
    r, c = np.unravel_index(int(torch.argmax(image.sum(0))), image.shape[1:])
    return c, r


@pytest.mark.parametrize("seed", range(12))
def test_heatmap_peak_follows_crop_and_flip(seed):
    cfg = TransformConfig(GEOM, pad=10, flip_p=0.5, erase_p=0.0)
    rng = np.random.default_rng(seed)
    x, y = int(rng.integers(12, SIZE[1] - 12)), int(rng.integers(12, SIZE[0] - 12))
    sample = dot_sample(x, y)
    out = TrainTransform(cfg)(sample, np.random.default_rng(1000 + seed))
    assert out["image"].shape == (3, *SIZE) and out["heatmaps"].shape == (NUM_JOINTS, *HM)
    dx, dy = dot_pixel(out["image"])
    flipped = out["heatmaps"][L_HIP].max() == 0
    joint = R_HIP if flipped else L_HIP
    assert out["heatmaps"][joint].max() > 0.6 * sample["heatmaps"][L_HIP].max()   # survives the sub-cell shift
    px, py = peak_pixel(out["heatmaps"][joint])
    assert abs(px - dx) <= STRIDE and abs(py - dy) <= STRIDE, (x, y, dx, dy, px, py)
    others = [c for c in range(NUM_JOINTS) if c != joint]
    assert out["heatmaps"][others].abs().max() == 0


def test_crop_and_flip_actually_happen():
    cfg = TransformConfig(GEOM, pad=10, flip_p=0.5, erase_p=0.0)
    sample = dot_sample(10, 30)
    positions, flips = set(), set()
    for seed in range(40):
        out = TrainTransform(cfg)(sample, np.random.default_rng(seed))
        positions.add(dot_pixel(out["image"]))
        flips.add(bool(out["heatmaps"][L_HIP].max() == 0))
    assert len(positions) > 10 and flips == {True, False}


def test_flip_swaps_left_right_channels_and_confidence():
    cfg = TransformConfig(GEOM, pad=0, flip_p=1.0, erase_p=0.0)
    sample = dot_sample(5, 40, joint=L_HIP)
    out = TrainTransform(cfg)(sample, np.random.default_rng(0))
    assert out["heatmaps"][L_HIP].max() == 0 and out["heatmaps"][R_HIP].max() == sample["heatmaps"][L_HIP].max()
    px, py = peak_pixel(out["heatmaps"][R_HIP])
    assert abs(px - (SIZE[1] - 1 - 5)) <= STRIDE and abs(py - 40) <= STRIDE
    assert dot_pixel(out["image"]) == (SIZE[1] - 1 - 5, 40)
    perm = flip_permutation()
    np.testing.assert_array_equal(out["joint_weights"].numpy(), sample["confidence"][perm])
    assert out["joint_weights"][L_HIP] == sample["confidence"][R_HIP]


def test_shift_maps_is_exact_at_subcell_offsets():
    maps = np.zeros((1, 6, 6), np.float32)
    maps[0, 2, 2] = 1.0
    out = shift_maps(maps, 0.0, 2.5)
    np.testing.assert_allclose(out[0, 2, 4:6], [0.5, 0.5])
    assert out.sum() == pytest.approx(1.0)
    out = shift_maps(maps, -1.25, 0.0)
    np.testing.assert_allclose(out[0, 0:2, 2], [0.25, 0.75])
    assert shift_maps(maps, 0.0, 7.0).max() == 0               # pushed out of the frame


def test_random_erasing_never_touches_heatmaps():
    base = dict(geometry=GEOM, pad=10, flip_p=0.5)
    sample = dot_sample(16, 32)
    sample["heatmaps"] = sample["heatmaps"] + np.float32(0.25)      # non-zero everywhere
    erased_any = 0
    for seed in range(10):
        with_erase = TrainTransform(TransformConfig(**base, erase_p=1.0))(sample, np.random.default_rng(seed))
        without = TrainTransform(TransformConfig(**base, erase_p=0.0))(sample, np.random.default_rng(seed))
        torch.testing.assert_close(with_erase["heatmaps"], without["heatmaps"], rtol=0, atol=0)
        diff = (with_erase["image"] != without["image"]).any(0)
        assert diff.any()
        erased_any += 1
        # the erased region is a filled rectangle with the configured constants
        ys, xs = torch.nonzero(diff, as_tuple=True)
        box = with_erase["image"][:, ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        torch.testing.assert_close(box[:, 0, 0], torch.tensor(TransformConfig().erase_fill))
    assert erased_any == 10


def test_normalisation_bgr_to_rgb_and_ir_three_channels():
    cfg = TransformConfig(GEOM)
    image = np.zeros((*SIZE, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30           # B, G, R
    maps = np.zeros((NUM_JOINTS, *HM), np.float32)
    out = EvalTransform(cfg)({"image": image, "heatmaps": maps})["image"]
    expect = [(30 / 255 - 0.485) / 0.229, (20 / 255 - 0.456) / 0.224, (10 / 255 - 0.406) / 0.225]
    torch.testing.assert_close(out[:, 0, 0], torch.tensor(expect, dtype=torch.float32))
    ir = EvalTransform(cfg)({"image": np.full(SIZE, 100, np.uint8), "heatmaps": maps})["image"]
    assert ir.shape == (3, *SIZE)
    torch.testing.assert_close(ir[0] * 0.229 + 0.485, ir[2] * 0.225 + 0.406)


def test_eval_transform_is_deterministic_and_resizes():
    cfg = TransformConfig(GEOM)
    rng = np.random.default_rng(0)
    sample = {"image": rng.integers(0, 255, (40, 20, 3), dtype=np.uint8),
              "heatmaps": rng.random((NUM_JOINTS, 10, 5), dtype=np.float32),
              "confidence": np.ones(NUM_JOINTS, np.float32)}
    t = EvalTransform(cfg)
    a, b = t(sample, np.random.default_rng(1)), t(sample, np.random.default_rng(2))
    assert a["image"].shape == (3, *SIZE) and a["heatmaps"].shape == (NUM_JOINTS, *HM)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_train_transform_reproducible_from_rng():
    cfg = TransformConfig(GEOM)
    sample = dot_sample(10, 20)
    t = TrainTransform(cfg)
    a, b = t(sample, np.random.default_rng(7)), t(sample, np.random.default_rng(7))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    outs = [t(sample, np.random.default_rng(s))["image"] for s in range(5)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="multiple of the stride"):
        Geometry((30, 16), 4)
    t = TrainTransform(TransformConfig(GEOM))
    with pytest.raises(ValueError, match="heatmaps must be"):
        t({"image": np.zeros((*SIZE, 3), np.uint8), "heatmaps": np.zeros((3, *HM), np.float32)})
    with pytest.raises(KeyError, match="heatmaps"):
        t({"image": np.zeros((*SIZE, 3), np.uint8)})


def _reference_train(sample, cfg, rng):
    """The paper's steps one by one with the plain step functions (what TrainTransform fuses)."""
    from vireid.inputs.transforms import erase_box, normalise, shift_image
    image = np.asarray(sample["image"])
    maps = np.asarray(sample["heatmaps"], np.float32)
    if maps.dtype != np.float32 or np.asarray(sample["heatmaps"]).dtype == np.uint8:
        maps = np.asarray(sample["heatmaps"]).astype(np.float32) / np.float32(255)
    weights = np.asarray(sample["confidence"], np.float32)
    oy, ox = (int(v) for v in rng.integers(0, 2 * cfg.pad + 1, size=2))
    dy, dx = cfg.pad - oy, cfg.pad - ox
    image, maps = shift_image(image, dy, dx), shift_maps(maps, dy / cfg.stride, dx / cfg.stride)
    if rng.random() < cfg.flip_p:
        image, maps, weights = flip_pair(image, maps, weights)
    out = normalise(np.ascontiguousarray(image), cfg)
    box = erase_box(out.shape[1], out.shape[2], cfg, rng)
    target_box = erase_box(out.shape[1], out.shape[2], cfg, rng) if cfg.erase_targets == "independent" else box
    if target_box is not None and cfg.erase_targets != "none":
        maps = erase_cells_reference(maps, target_box, cfg.stride)
    if box is not None:
        y, x, h, w = box
        out[:, y:y + h, x:x + w] = np.asarray(cfg.erase_fill, np.float32)[:, None, None]
    return out, maps, weights


@pytest.mark.parametrize("erase_targets", ["none", "same", "independent"])
@pytest.mark.parametrize("quantised", [False, True])
def test_fused_train_transform_equals_the_steps_one_by_one(quantised, erase_targets):
    """TrainTransform flips before shifting, shifts flat runs and takes uint8 maps: the same
    result as shift, then flip, then normalise and erase, on random maps and images."""
    cfg = TransformConfig(Geometry((48, 24), 4), pad=10, flip_p=0.5, erase_p=0.5, erase_targets=erase_targets)
    data = np.random.default_rng(5)
    for seed in range(60):
        maps = data.random((NUM_JOINTS, 12, 6), dtype=np.float32)
        if quantised:
            maps = np.rint(maps * 255).astype(np.uint8)
        sample = {"image": data.integers(0, 256, (48, 24, 3), dtype=np.uint8), "heatmaps": maps,
                  "confidence": data.random(NUM_JOINTS, dtype=np.float32)}
        got = TrainTransform(cfg)(sample, np.random.default_rng(seed))
        image, ref_maps, weights = _reference_train(sample, cfg, np.random.default_rng(seed))
        np.testing.assert_array_equal(got["image"].numpy(), image)
        np.testing.assert_allclose(got["heatmaps"].numpy(), ref_maps, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(got["joint_weights"].numpy(), weights)


@pytest.mark.parametrize("flip", [False, True])
def test_flip_shift_maps_matches_shift_then_flip_at_every_offset(flip):
    from vireid.inputs.transforms import flip_shift_maps
    maps = np.random.default_rng(0).random((NUM_JOINTS, 8, 5), dtype=np.float32)
    weights = np.ones(NUM_JOINTS, np.float32)
    for dy in np.arange(-9, 9.01, 0.25):
        for dx in (-6.0, -2.75, -1.0, -0.5, 0.0, 0.25, 1.5, 4.75, 5.0):
            ref = shift_maps(maps, dy, dx)
            if flip:
                ref = flip_pair(np.zeros((1, 1, 3), np.uint8), ref, weights)[1]
            got = flip_shift_maps(maps, dy, dx, flip)
            assert got.dtype == np.float32 and got.flags.c_contiguous
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6, err_msg=f"dy={dy} dx={dx}")


# ------------------------------------------------------------ normalisation on the device
# ------------------------------------------------------------ erasing the pose targets (release)
def test_erased_box_maps_to_zeroed_cells_at_the_stride():
    from vireid.inputs.transforms import erase_cells, erased_cells

    maps = np.ones((NUM_JOINTS, 16, 8), np.float32)
    # box rows 10..18, columns 5..10 at stride 4: cell centres 4c + 1.5 inside [9.5, 18.5) are
    # rows 2, 3, 4 (9.5, 13.5, 17.5) and inside [4.5, 10.5) columns 1, 2 (5.5, 9.5)
    box = (10, 5, 9, 6)
    assert erased_cells(box, 4, (16, 8)) == (slice(2, 5), slice(1, 3))
    got = erase_cells(maps, box, 4)
    want = maps.copy()
    want[:, 2:5, 1:3] = 0
    np.testing.assert_array_equal(got, want)
    assert maps.min() == 1.0                                          # the input is left alone
    rng = np.random.default_rng(0)
    for _ in range(300):                                              # every stride, edges included
        s = int(rng.choice([1, 2, 4, 8]))
        hm = (int(rng.integers(1, 10)), int(rng.integers(1, 6)))
        h, w = int(rng.integers(1, hm[0] * s + 1)), int(rng.integers(1, hm[1] * s + 1))
        b = (int(rng.integers(0, hm[0] * s - h + 1)), int(rng.integers(0, hm[1] * s - w + 1)), h, w)
        m = rng.random((2, *hm)).astype(np.float32) + 0.5
        np.testing.assert_array_equal(erase_cells(m, b, s), erase_cells_reference(m, b, s), err_msg=str((b, s)))


@pytest.mark.parametrize("device_normalise", [False, True])
def test_erase_targets_same_zeroes_the_cells_under_the_image_box(device_normalise):
    sample = dot_sample(16, 32)
    sample["heatmaps"] = sample["heatmaps"] + np.float32(0.25)       # non-zero everywhere
    base = dict(geometry=GEOM, pad=4, flip_p=0.5, erase_p=1.0)
    for seed in range(8):
        plain = TrainTransform(TransformConfig(**base), device_normalise=True)(sample, np.random.default_rng(seed))
        same = TrainTransform(TransformConfig(**base, erase_targets="same"), device_normalise=device_normalise)(
            sample, np.random.default_rng(seed))
        box = tuple(int(v) for v in plain["erase"])
        assert box[2] > 0
        want = erase_cells_reference(plain["heatmaps"].numpy(), box, STRIDE)
        np.testing.assert_array_equal(same["heatmaps"].numpy(), want)
        assert (want == 0).any() and (want != 0).any()
        if device_normalise:                                          # the image and its box are unchanged
            assert torch.equal(same["image"], plain["image"]) and torch.equal(same["erase"], plain["erase"])


def test_erase_targets_independent_draws_a_second_box():
    sample = dot_sample(16, 32)
    sample["heatmaps"] = sample["heatmaps"] + np.float32(0.25)
    base = dict(geometry=GEOM, pad=0, flip_p=0.0, erase_p=1.0)
    differs = 0
    for seed in range(8):
        plain = TrainTransform(TransformConfig(**base), device_normalise=True)(sample, np.random.default_rng(seed))
        ind = TrainTransform(TransformConfig(**base, erase_targets="independent"), device_normalise=True)(
            sample, np.random.default_rng(seed))
        assert torch.equal(ind["image"], plain["image"]) and torch.equal(ind["erase"], plain["erase"])
        rng = np.random.default_rng(seed)                             # replay: crop offsets, flip, image box
        rng.integers(0, 1, size=2), rng.random()
        from vireid.inputs.transforms import erase_box
        image_box = erase_box(*SIZE, TransformConfig(**base), rng)
        target_box = erase_box(*SIZE, TransformConfig(**base), rng)
        assert image_box == tuple(int(v) for v in plain["erase"])
        np.testing.assert_array_equal(ind["heatmaps"].numpy(),
                                      erase_cells_reference(plain["heatmaps"].numpy(), target_box, STRIDE))
        differs += target_box != image_box
    assert differs >= 6


def test_erase_targets_rejects_unknown():
    with pytest.raises(ValueError, match="erase_targets"):
        TransformConfig(GEOM, erase_targets="both")


def test_erase_aspect_sampling_log_is_symmetric():
    """torchvision draws log(aspect) uniformly: as many tall boxes (h > w) as wide ones;
    torchreid's uniform draw in [0.3, 3.33] gives tall ones (aspect > 1) 77% of the time."""
    from vireid.inputs.transforms import erase_box

    def tall_share(sampling):
        cfg = TransformConfig(Geometry((400, 400), 4), erase_p=1.0, erase_area=(0.02, 0.05),
                              erase_aspect_sampling=sampling)
        rng = np.random.default_rng(0)
        boxes = [erase_box(400, 400, cfg, rng) for _ in range(4000)]
        return np.mean([b[2] > b[3] for b in boxes])

    assert abs(tall_share("log") - 0.5) < 0.03
    assert abs(tall_share("uniform") - (1 / 0.3 - 1) / (1 / 0.3 - 0.3)) < 0.03
    with pytest.raises(ValueError, match="erase_aspect_sampling"):
        TransformConfig(GEOM, erase_aspect_sampling="normal")
