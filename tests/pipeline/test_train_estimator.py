"""`vireid-prep train-estimator`: GCCPM's LIP recipe (data, targets, loss, PCKh, training, files)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pipeline.lip_data import (AugmentConfig, AugmentParams, LipTrainSet, TargetConfig, apply_augment,
                               augment_matrix, build_targets, sample_params)
from pipeline.synth import synthesize
from pipeline.estimator_optim import gccpm_param_groups, heatmap_loss
from pipeline.cli_train_estimator import register
from pipeline.train_estimator import TrainConfig, TrainEstimatorError, log_path, state_path, train_estimator
from vireid.data.manifest import Record
from vireid.pose.codec import STRIDE, HeatmapCodec, fit_image, normalise_input, prepare_input, transform_points
from vireid.pose.gccpm import GCCPM, load_gccpm_checkpoint
from vireid.pose.joints import JOINT_INDEX, NUM_JOINTS

NAN = float("nan")
TINY = dict(batch_size=6, lr=1e-3, input_size=64, num_refinement_stages=1)


def _kp(**joints) -> np.ndarray:
    """(16, 3) keypoints, all missing except ``name=(x, y[, occluded])``."""
    kp = np.full((NUM_JOINTS, 3), NAN)
    for name, v in joints.items():
        kp[JOINT_INDEX[name]] = (v[0], v[1], v[2] if len(v) > 2 else 0.0)
    return kp


# ---------------------------------------------------------------- geometry
def test_fit_matrix_hand_values():
    # 100x50 image into 64: scale 0.64, centre (24.5, 49.5) -> (31.5, 31.5)
    m = augment_matrix(100, 50, AugmentParams(), 64)
    np.testing.assert_allclose(m, [[0.64, 0, 31.5 - 0.64 * 24.5], [0, 0.64, 31.5 - 0.64 * 49.5]], atol=1e-12)
    np.testing.assert_allclose(transform_points([[0, 0], [49, 99]], m), [[15.82, -0.18], [47.18, 63.18]], atol=1e-9)


def test_rotation_grows_canvas_and_turns_counter_clockwise():
    # 90 degrees: the bounding box is 100 wide, 50 high -> scale 0.64 again; the top centre
    # (24.5, 0) goes to the left middle, the left middle (0, 49.5) to the bottom middle
    m = augment_matrix(100, 50, AugmentParams(angle_deg=90.0), 64)
    np.testing.assert_allclose(transform_points([[24.5, 0.0], [0.0, 49.5]], m),
                               [[-0.18, 31.5], [31.5, 47.18]], atol=1e-9)


def test_scale_and_flip_about_the_centre():
    m = augment_matrix(64, 64, AugmentParams(scale=1.5, flip=True), 64)
    # (41.5, 31.5) is 10 px right of the centre -> 15 px right, then mirrored: 31.5 - 15
    np.testing.assert_allclose(transform_points([[41.5, 31.5]], m), [[16.5, 31.5]], atol=1e-9)


# crop shapes: 2:1 (the fits agreed before they were one), tall with a fractional width
# (the old inference fit rounded it), wide (the old inference fit squashed it), square
FIT_SHAPES = [(288, 144), (128, 64), (300, 140), (100, 45), (333, 97), (120, 200), (256, 300), (200, 200)]


@pytest.mark.parametrize("size", [256, 64])
def test_the_training_fit_without_augmentation_is_the_inference_fit(tmp_path, size):
    """Identity AugmentParams give the matrix, the input and the keypoints of the inference
    fit (vireid.pose.codec.prepare_input, run by the lip estimator) exactly, and LipValSet
    serves that input and its inverse."""
    import cv2

    from pipeline.lip_data import LipValSet

    rng = np.random.default_rng(0)
    for h, w in FIT_SHAPES:
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        fit = fit_image(h, w, size)
        assert augment_matrix(h, w, AugmentParams(), size).tobytes() == fit.matrix.tobytes(), (h, w)
        kp = _kp(B_Head=(w * 0.4, h * 0.1), R_Ankle=(w * 0.7, h * 0.9, 1))
        out, moved = apply_augment(image, kp, AugmentParams(), size)
        x, fit2 = prepare_input(image, size)
        np.testing.assert_array_equal(normalise_input(out), x)
        np.testing.assert_array_equal(moved[:, :2], fit2.to_input(kp[:, :2]))
        np.testing.assert_array_equal(moved[:, 2], kp[:, 2])
        name = f"{h}x{w}.png"
        cv2.imwrite(str(tmp_path / name), image)
        rec = Record(path=name, pid=0, camera="", camid=0, modality="rgb", split="val", height=h, width=w,
                     nbytes=1, sha1="", keypoints=[[None if np.isnan(v) else float(v) for v in row] for row in kp])
        item = LipValSet(tmp_path, [rec], size)[0]
        np.testing.assert_array_equal(item["image"], x)
        np.testing.assert_array_equal(item["inverse"], fit2.inverse)


def test_training_targets_decode_through_the_inference_fit_to_the_keypoints():
    """The estimator is trained as it is run: lip_data's targets, decoded by the codec within
    the cells the image covers and mapped back through the inference fit, return the
    keypoints within a quarter of a stride-8 cell on each axis."""
    size = 128
    rng = np.random.default_rng(0)
    for h, w in ((size, size), (size, size // 2), (96, 37)):
        image = np.zeros((h, w, 3), np.uint8)
        _, fit = prepare_input(image, size)
        r0, r1, c0, c1 = fit.cells(STRIDE)
        # joints at least 1.5 cells inside the cells the image covers (edge cells get no sub-cell step)
        lo, hi = np.array([c0, r0]) * STRIDE + 12, np.array([c1, r1]) * STRIDE - 12
        kp = np.zeros((NUM_JOINTS, 3))
        kp[:, :2] = fit.to_image(rng.uniform(lo, hi, size=(NUM_JOINTS, 2)))      # image pixels
        _, moved = apply_augment(image, kp, AugmentParams(), size)
        maps, _ = build_targets(moved, TargetConfig(input_size=size))             # (17, 16, 16)
        xy, score = TargetConfig(input_size=size).codec.decode(maps[:NUM_JOINTS], within=(r0, r1, c0, c1))
        assert np.abs(xy - moved[:, :2]).max() <= STRIDE / 4 + 1e-6                 # input pixels
        back = fit.to_image(xy)                                                    # image pixels: scaled by 1/f
        assert np.abs(back - kp[:, :2]).max() <= STRIDE / 4 / fit.matrix[0, 0] + 1e-6
        assert (score > 0.26).all()
        assert isinstance(TargetConfig().codec, HeatmapCodec) and TargetConfig().codec.stride == STRIDE


def test_pixel_and_keypoint_move_together_with_flip_swap():
    """A bright dot drawn at R_Wrist ends where the keypoint goes, in the L_Wrist row after a flip."""
    image = np.zeros((120, 80, 3), np.uint8)
    image[59:62, 19:22] = 255                      # dot centred on (20, 60)
    kp = _kp(R_Wrist=(20, 60, 1), L_Wrist=(70, 10, 0))
    params = AugmentParams(angle_deg=25.0, scale=1.2, flip=True)
    out, moved = apply_augment(image, kp, params, 96)
    assert out.shape == (96, 96, 3) and out.dtype == np.uint8
    ys, xs = np.nonzero(out[..., 0] > 128)
    dot = np.array([xs.mean(), ys.mean()])
    np.testing.assert_allclose(moved[JOINT_INDEX["L_Wrist"], :2], dot, atol=0.75)
    assert moved[JOINT_INDEX["L_Wrist"], 2] == 1          # the occlusion flag travels with the joint
    assert moved[JOINT_INDEX["R_Wrist"], 2] == 0
    # unflipped: the dot is in the R_Wrist row
    out2, moved2 = apply_augment(image, kp, AugmentParams(angle_deg=25.0, scale=1.2), 96)
    ys, xs = np.nonzero(out2[..., 0] > 128)
    np.testing.assert_allclose(moved2[JOINT_INDEX["R_Wrist"], :2], [xs.mean(), ys.mean()], atol=0.75)
    np.testing.assert_allclose(moved[JOINT_INDEX["L_Wrist"], 0], 95 - moved2[JOINT_INDEX["R_Wrist"], 0], atol=1e-9)
    assert np.isnan(moved[[i for i in range(NUM_JOINTS) if i not in (10, 15)], :2]).all()


def test_sample_params_reproducible_and_in_gccpm_ranges():
    cfg = AugmentConfig()
    draws = [sample_params(np.random.default_rng([3, 0, i]), 200, 100, cfg) for i in range(400)]
    again = [sample_params(np.random.default_rng([3, 0, i]), 200, 100, cfg) for i in range(400)]
    assert draws == again
    angles = np.array([p.angle_deg for p in draws])
    scales = np.array([p.scale for p in draws])
    assert np.abs(angles).max() <= 40 and angles.min() < -30 and angles.max() > 30
    assert ((scales == 1.0) | ((scales >= 0.8) & (scales < 1.5))).all()
    for frac in (np.mean([p.flip for p in draws]), np.mean(scales != 1.0),
                 np.mean([p.mask_polygon is not None for p in draws]),
                 np.mean([p.channel_order is not None for p in draws])):
        assert 0.4 < frac < 0.6
    none = sample_params(np.random.default_rng(0), 200, 100, AugmentConfig.none())
    assert none == AugmentParams()


# ---------------------------------------------------------------- targets
def test_target_peak_lands_on_flipped_keypoint_channel():
    # 64x64 image, no scaling: R_Wrist at (19.5, 27.5) is mirrored to (43.5, 27.5) = centre of cell (3, 5)
    image = np.zeros((64, 64, 3), np.uint8)
    kp = _kp(R_Wrist=(19.5, 27.5), B_Head=(31.5, 3.5))
    _, moved = apply_augment(image, kp, AugmentParams(flip=True), 64)
    maps, weights = build_targets(moved, TargetConfig(input_size=64))
    assert maps.shape == (17, 8, 8) and weights.shape == (17,)
    lw, rw = JOINT_INDEX["L_Wrist"], JOINT_INDEX["R_Wrist"]
    assert maps[lw, 3, 5] == pytest.approx(1.0) and np.unravel_index(maps[lw].argmax(), (8, 8)) == (3, 5)
    assert maps[rw].max() == 0 and weights[rw] == 0 and weights[lw] == 1
    # sigma 7 px (GCCPM's 0.875 cell at any input size): the next cell, 8 px away, holds exp(-64 / 98)
    assert maps[lw, 3, 6] == pytest.approx(math.exp(-64 / (2 * 7.0 ** 2)), rel=1e-5)
    assert maps[16, 3, 5] == pytest.approx(0.0) and maps[16, 7, 7] == pytest.approx(1.0)


def test_sigma_is_gccpm_cells_at_any_input_size():
    # GCCPM's sigma (7 px at 256, stride 8) stays 0.875 of a cell at smaller inputs; scaled with the
    # input size instead it fell to 2.6 px at 96 and one-cell targets (every neighbour under 0.01)
    cfg = TargetConfig(input_size=128)
    assert cfg.sigma_px == pytest.approx(7.0) and cfg.map_size == 16
    maps, _ = build_targets(_kp(B_Neck=(43.5, 27.5)), cfg)       # centre of cell (3, 5)
    assert maps[JOINT_INDEX["B_Neck"], 3, 6] == pytest.approx(math.exp(-64 / (2 * 7.0 ** 2)), rel=1e-5)
    assert maps[JOINT_INDEX["B_Neck"], 3, 8] == 0                # 24 px: exp(-576 / 98) < 0.01 -> cut
    assert TargetConfig().sigma_px == 7.0 and TargetConfig(input_size=96, sigma=3.0).sigma_px == 3.0


def test_missing_and_occluded_joint_weights():
    kp = _kp(R_Knee=(43.5, 27.5, 1), B_Neck=(11.5, 11.5, 0))    # R_Ankle etc. missing, R_Knee occluded
    maps, w = build_targets(kp, TargetConfig(input_size=64))
    knee, neck, ankle = JOINT_INDEX["R_Knee"], JOINT_INDEX["B_Neck"], JOINT_INDEX["R_Ankle"]
    assert w[ankle] == 0 and w[knee] == 0 and w[neck] == 1 and w[16] == 1
    assert w.sum() == 2                                          # neck + background
    assert maps[knee, 3, 5] == pytest.approx(1.0)                # occluded joints are still rendered ...
    assert maps[16, 3, 5] == pytest.approx(0.0)                  # ... and count in the background
    assert maps[ankle].max() == 0
    _, w_gccpm = build_targets(kp, TargetConfig(input_size=64, occluded="train", missing="absent"))
    assert (w_gccpm == 1).all()
    _, w_occ = build_targets(kp, TargetConfig(input_size=64, occluded="train"))
    assert w_occ[knee] == 1 and w_occ[ankle] == 0
    with pytest.raises(ValueError, match="occluded policy"):
        TargetConfig(occluded="maybe")
    with pytest.raises(ValueError, match="multiple of 8"):
        TargetConfig(input_size=100)


def test_train_set_item(tmp_path):
    import cv2
    (tmp_path / "a").mkdir()
    cv2.imwrite(str(tmp_path / "a" / "x.png"), np.full((64, 64, 3), 200, np.uint8))
    rows = [[None, None, None]] * NUM_JOINTS
    rows[JOINT_INDEX["B_Head"]] = [19.5, 27.5, 0.0]
    rec = Record(path="a/x.png", pid=0, camera="", camid=0, modality="rgb", split="train", height=64, width=64,
                 nbytes=1, sha1="", keypoints=rows)
    ds = LipTrainSet(tmp_path, [rec], TargetConfig(input_size=64), AugmentConfig.none(), seed=0)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == np.float32
    assert item["image"][0, 0, 0] == pytest.approx((200 - 128) / 256)
    assert item["maps"][JOINT_INDEX["B_Head"], 3, 2] == pytest.approx(1.0)
    ds2 = LipTrainSet(tmp_path, [rec], TargetConfig(input_size=64), AugmentConfig(), seed=5)
    ds2.set_epoch(1)
    a = ds2[0]["maps"]
    ds2.set_epoch(1)
    np.testing.assert_array_equal(a, ds2[0]["maps"])


# ---------------------------------------------------------------- loss and optimiser
def test_heatmap_loss_hand_case():
    target = torch.zeros(2, 17, 1, 1)
    weights = torch.ones(2, 17)
    weights[0, 0] = 0
    s0, s1 = torch.ones(2, 17, 1, 1), torch.full((2, 17, 1, 1), 2.0)
    total, per_stage = heatmap_loss([s0, s1], target, weights)
    # 33 weighted unit errors: 33 / 2 / 2 = 8.25; squared 2s: 4 * 33 / 4 = 33
    assert per_stage == pytest.approx([8.25, 33.0]) and float(total) == pytest.approx(41.25)


def test_param_groups_follow_gccpm():
    model = GCCPM(num_refinement_stages=1)
    groups = gccpm_param_groups(model, 1e-3)
    seen = [id(p) for g in groups for p in g["params"]]
    assert len(seen) == len(set(seen))
    cpm_bn = {id(p) for m in model.cpm.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()}
    assert set(seen) == {id(p) for p in model.parameters()} - cpm_bn and cpm_bn
    ref = model.refinement_stages[0].heatmaps[1][0]
    lr_of = {id(p): g for g in groups for p in g["params"]}
    assert lr_of[id(ref.weight)]["lr"] == pytest.approx(4e-3) and "weight_decay" not in lr_of[id(ref.weight)]
    assert lr_of[id(ref.bias)]["lr"] == pytest.approx(8e-3) and lr_of[id(ref.bias)]["weight_decay"] == 0
    dw = model.model[1][0]
    assert lr_of[id(dw.weight)]["lr"] == pytest.approx(1e-3) and lr_of[id(dw.weight)]["weight_decay"] == 0


# ---------------------------------------------------------------- training
@pytest.fixture(scope="module")
def lip_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lip") / "LIP"
    synthesize("lip", root, ids=8, seed=0, images_per_camera=3)   # 18 train, 6 val images
    return root


@pytest.fixture(scope="module")
def trained(lip_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "weights.pt"
    result = train_estimator(lip_root, out, TrainConfig(epochs=2, **TINY))
    return out, result


def test_tiny_training_lowers_loss_and_writes_public_layout(trained):
    out, result = trained
    losses = [e["loss"] for e in result.epochs]
    assert len(losses) == 2 and losses[-1] < 0.7 * losses[0]
    obj = torch.load(out, weights_only=True)
    assert set(obj) == {"state_dict", "input_size"} and obj["input_size"] == TINY["input_size"]
    assert set(obj["state_dict"]) == set(GCCPM(num_refinement_stages=1).state_dict())
    model = load_gccpm_checkpoint(out)
    assert len(model.refinement_stages) == 1
    doc = json.loads(log_path(out).read_text())
    assert [e["epoch"] for e in doc["epochs"]] == [1, 2]
    assert all(0 <= e["val_pckh"] <= 100 for e in doc["epochs"]) and doc["initial_val"]["images"] == 6
    assert doc["config"]["sigma_px"] == pytest.approx(7.0) and doc["train_images"] == 18


def test_weights_feed_the_lip_estimator(trained):
    from pipeline.estimators import build_estimator
    est = build_estimator("lip", root=trained[0].parent, weights=trained[0])
    assert est.size == TINY["input_size"]          # runs at the side it was trained at
    out = est.estimate([np.zeros((96, 48, 3), np.uint8)], ["x.jpg"])
    assert out.shape == (1, NUM_JOINTS, 3)


def test_resume_continues_identically(lip_root, trained, tmp_path):
    out = tmp_path / "w.pt"
    train_estimator(lip_root, out, TrainConfig(epochs=1, **TINY))
    assert state_path(out).is_file()
    result = train_estimator(lip_root, out, TrainConfig(epochs=2, **TINY), resume=True)
    assert [e["epoch"] for e in result.epochs] == [1, 2]
    ref = torch.load(trained[0], weights_only=True)["state_dict"]
    got = torch.load(out, weights_only=True)["state_dict"]
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=0, atol=0, msg=k)
    with pytest.raises(TrainEstimatorError, match="different options.*input_size"):
        train_estimator(lip_root, out, TrainConfig(epochs=4, **{**TINY, "input_size": 96}), resume=True)


def test_warmup_cosine_hand_values():
    from pipeline.estimator_optim import warmup_cosine

    f = warmup_cosine(total_steps=10, warmup_steps=2)
    # warm-up 1/2, 2/2; then 0.5 * (1 + cos(pi * k / 8)) for k = 0 .. 8, and 0 beyond the end
    assert [f(0), f(1)] == [0.5, 1.0]
    assert f(2) == pytest.approx(1.0) and f(6) == pytest.approx(0.5) and f(10) == pytest.approx(0.0)
    assert f(4) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4))) and f(12) == pytest.approx(0.0)


def test_cosine_schedule_steps_every_batch_and_resumes_exactly(lip_root, tmp_path):
    cfg = dict(TINY, schedule="cosine", warmup_fraction=0.25)
    straight = tmp_path / "a.pt"
    result = train_estimator(lip_root, straight, TrainConfig(epochs=2, **cfg))
    # 18 images, batches of 6: 3 updates an epoch, 6 in all, warm-up round(0.25 * 6) = 2
    lr = cfg["lr"]
    assert result.epochs[0]["lr"] == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * 1 / 4)))
    assert result.epochs[1]["lr"] == pytest.approx(0.0, abs=1e-12)
    resumed = tmp_path / "b.pt"

    def stop(entry):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):          # killed after epoch 1 of 2
        train_estimator(lip_root, resumed, TrainConfig(epochs=2, **cfg), on_epoch=stop)
    with pytest.raises(TrainEstimatorError, match="different options.*epochs"):   # the schedule's length
        train_estimator(lip_root, resumed, TrainConfig(epochs=3, **cfg), resume=True)
    train_estimator(lip_root, resumed, TrainConfig(epochs=2, **cfg), resume=True)
    ref = torch.load(straight, weights_only=True)["state_dict"]
    got = torch.load(resumed, weights_only=True)["state_dict"]
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=0, atol=0, msg=k)
    with pytest.raises(ValueError, match="schedule 'linear'"):
        TrainConfig(schedule="linear")


def test_augment_presets():
    light = AugmentConfig.preset("light")
    assert light.mask_prob == 0 and light.max_rotate_deg == 15 and light.scale_range == (0.9, 1.2)
    assert light.flip_prob == AugmentConfig().flip_prob and AugmentConfig.preset("gccpm") == AugmentConfig()
    assert AugmentConfig.preset("none") == AugmentConfig.none()
    with pytest.raises(ValueError, match="augmentation 'strong'"):
        AugmentConfig.preset("strong")


def test_resume_from_a_damaged_state_falls_back_to_the_previous_one(lip_root, trained, tmp_path, caplog):
    """The state is written like vireid-train's last.pt (vireid.engine.loop): sealed, the one before
    kept; a damaged state.pt resumes from state.prev.pt (epoch 1) and still ends where a straight run does."""
    from tests.fs import flip_byte

    out = tmp_path / "w.pt"
    train_estimator(lip_root, out, TrainConfig(epochs=2, **TINY))
    flip_byte(state_path(out), state_path(out).stat().st_size // 2, 0x10)
    result = train_estimator(lip_root, out, TrainConfig(epochs=2, **TINY), resume=True)
    said = [m for m in caplog.messages if "resuming from the previous state" in m]
    assert said and "(epoch 1)" in said[0] and str(state_path(out)) in said[0], caplog.messages
    assert [e["epoch"] for e in result.epochs] == [1, 2]
    ref = torch.load(trained[0], weights_only=True)["state_dict"]
    got = torch.load(out, weights_only=True)["state_dict"]
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=0, atol=0, msg=k)


def test_non_finite_loss_stops_before_the_update(lip_root, tmp_path, monkeypatch):
    import pipeline.train_estimator as te

    real, calls = te.heatmap_loss, {"n": 0}

    def poisoned(*args):
        loss, per_stage = real(*args)
        calls["n"] += 1
        return (loss * float("nan"), per_stage) if calls["n"] == 2 else (loss, per_stage)

    monkeypatch.setattr(te, "heatmap_loss", poisoned)
    with pytest.raises(TrainEstimatorError, match=r"^epoch 1: the loss became nan; lower --lr$"):
        train_estimator(lip_root, tmp_path / "w.pt", TrainConfig(epochs=1, **TINY))
    assert not (tmp_path / "w.pt").exists() and not state_path(tmp_path / "w.pt").exists()


def test_init_checkpoint_must_fit(lip_root, tmp_path):
    torch.save({"state_dict": GCCPM(num_refinement_stages=2).state_dict()}, tmp_path / "two.pt")
    with pytest.raises(TrainEstimatorError, match="(?s)--init.*unexpected keys"):
        train_estimator(lip_root, tmp_path / "w.pt", TrainConfig(epochs=1, **TINY), init=tmp_path / "two.pt")


def test_bad_root_errors(tmp_path):
    with pytest.raises(TrainEstimatorError, match="not a directory"):
        train_estimator(tmp_path / "absent", tmp_path / "w.pt", TrainConfig(epochs=1, **TINY))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainEstimatorError, match="(?s)not a usable LIP data set.*lip_train_set.csv"):
        train_estimator(tmp_path / "empty", tmp_path / "w.pt", TrainConfig(epochs=1, **TINY))
    assert not (tmp_path / "w.pt").exists()


def _cli() -> click.Group:
    @click.group()
    def group() -> None:
        pass
    register(group)
    return group


def test_cli(lip_root, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli.pt"
    args = ["train-estimator", "--root", str(lip_root), "--out", str(out), "--epochs", "1", "--input-size", "64",
            "--num-refinement-stages", "1", "--batch-size", "18", "--lr", "1e-3", "--workers", "0",
            "--val-images", "4", "--no-progress"]
    res = runner.invoke(_cli(), args)
    assert res.exit_code == 0, res.output
    assert "val PCKh@0.5" in res.output and out.is_file()
    assert json.loads(log_path(out).read_text())["val_images"] == 4
    res = runner.invoke(_cli(), args[:4] + [str(tmp_path / "short.pt")] + args[5:] +
                        ["--schedule", "cosine", "--augment", "light", "--sigma", "5"])
    assert res.exit_code == 0, res.output
    config = json.loads(log_path(tmp_path / "short.pt").read_text())["config"]
    assert config["schedule"] == "cosine" and config["sigma_px"] == 5.0 and config["augment"]["mask_prob"] == 0
    res = runner.invoke(_cli(), ["train-estimator", "--root", str(tmp_path / "nope"), "--out", str(out)])
    assert res.exit_code == 1 and "not a directory" in res.output and "Traceback" not in res.output
    res = runner.invoke(_cli(), args[:5] + ["--input-size", "100"])
    assert res.exit_code == 2 and "multiple of 8" in res.output


def test_cli_settings_from_yaml_set_and_options_over_the_dataclass_defaults(tmp_path, monkeypatch):
    """train-estimator is configured as the other commands: TrainConfig's defaults, a YAML file
    (with what it inherits), --set overrides, then the options given; no option repeats a default."""
    import pipeline.cli_train_estimator as cli_module

    seen = []

    def fake(root, out, cfg, **kwargs):
        seen.append((cfg, kwargs))
        raise TrainEstimatorError("stopped by the test")
    monkeypatch.setattr(cli_module, "train_estimator", fake)
    (tmp_path / "base.yaml").write_text("epochs: 3\nlr: 0.002\naugment:\n  mask_prob: 0.0\n")
    (tmp_path / "est.yaml").write_text("inherit: base.yaml\ninput_size: 64\n")
    base = ["train-estimator", "--root", str(tmp_path), "--out", str(tmp_path / "w.pt"), "--no-progress"]
    runner = CliRunner()
    res = runner.invoke(_cli(), base)
    assert res.exit_code == 1 and "stopped by the test" in res.output
    assert seen[-1][0] == TrainConfig()                                 # the dataclass's defaults alone
    res = runner.invoke(_cli(), base + ["--config", str(tmp_path / "est.yaml"), "--set", "lr=0.001", "--set",
                                        "schedule=cosine", "--epochs", "2", "--augment", "light"])
    assert res.exit_code == 1, res.output
    cfg = seen[-1][0]
    assert (cfg.epochs, cfg.lr, cfg.schedule, cfg.input_size, cfg.batch_size) == (2, 0.001, "cosine", 64, 32)
    assert cfg.augment == AugmentConfig.light()                        # the option's preset over the file's
    res = runner.invoke(_cli(), base + ["--config", str(tmp_path / "est.yaml"), "--set", "augment.flip_prob=0"])
    assert seen[-1][0].augment == AugmentConfig(mask_prob=0.0, flip_prob=0.0) and seen[-1][0].epochs == 3
    res = runner.invoke(_cli(), base + ["--set", "lrr=1"])
    assert res.exit_code == 2 and "unknown key 'lrr'; did you mean 'lr'?" in res.output
    res = runner.invoke(_cli(), base + ["--set", "input_size=100"])
    assert res.exit_code == 2 and "multiple of 8" in res.output
