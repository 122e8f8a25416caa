"""`vireid-prep train-estimator`: GCCPM's LIP recipe (loss, PCKh, training, files); its data
and targets are tested in test_lip_data.py."""
from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pipeline.lip_data import AugmentConfig
from pipeline.synth import synthesize
from pipeline.estimator_optim import gccpm_param_groups, heatmap_loss
from pipeline.cli_train_estimator import register
from pipeline.train_estimator import EstimatorTrainConfig, TrainEstimatorError, log_path, state_path, train_estimator
from vireid.pose.gccpm import GCCPM, load_gccpm_checkpoint
from vireid.pose.joints import NUM_JOINTS

TINY = dict(batch_size=6, lr=1e-3, input_size=64, num_refinement_stages=1)


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
    result = train_estimator(lip_root, out, EstimatorTrainConfig(epochs=2, **TINY))
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
    train_estimator(lip_root, out, EstimatorTrainConfig(epochs=1, **TINY))
    assert state_path(out).is_file()
    result = train_estimator(lip_root, out, EstimatorTrainConfig(epochs=2, **TINY), resume=True)
    assert [e["epoch"] for e in result.epochs] == [1, 2]
    ref = torch.load(trained[0], weights_only=True)["state_dict"]
    got = torch.load(out, weights_only=True)["state_dict"]
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=0, atol=0, msg=k)
    with pytest.raises(TrainEstimatorError, match="different options.*input_size"):
        train_estimator(lip_root, out, EstimatorTrainConfig(epochs=4, **{**TINY, "input_size": 96}), resume=True)


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
    result = train_estimator(lip_root, straight, EstimatorTrainConfig(epochs=2, **cfg))
    # 18 images, batches of 6: 3 updates an epoch, 6 in all, warm-up round(0.25 * 6) = 2
    lr = cfg["lr"]
    assert result.epochs[0]["lr"] == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * 1 / 4)))
    assert result.epochs[1]["lr"] == pytest.approx(0.0, abs=1e-12)
    resumed = tmp_path / "b.pt"

    def stop(entry):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):          # killed after epoch 1 of 2
        train_estimator(lip_root, resumed, EstimatorTrainConfig(epochs=2, **cfg), on_epoch=stop)
    with pytest.raises(TrainEstimatorError, match="different options.*epochs"):   # the schedule's length
        train_estimator(lip_root, resumed, EstimatorTrainConfig(epochs=3, **cfg), resume=True)
    train_estimator(lip_root, resumed, EstimatorTrainConfig(epochs=2, **cfg), resume=True)
    ref = torch.load(straight, weights_only=True)["state_dict"]
    got = torch.load(resumed, weights_only=True)["state_dict"]
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=0, atol=0, msg=k)
    with pytest.raises(ValueError, match="schedule 'linear'"):
        EstimatorTrainConfig(schedule="linear")


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
    train_estimator(lip_root, out, EstimatorTrainConfig(epochs=2, **TINY))
    flip_byte(state_path(out), state_path(out).stat().st_size // 2, 0x10)
    result = train_estimator(lip_root, out, EstimatorTrainConfig(epochs=2, **TINY), resume=True)
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
        train_estimator(lip_root, tmp_path / "w.pt", EstimatorTrainConfig(epochs=1, **TINY))
    assert not (tmp_path / "w.pt").exists() and not state_path(tmp_path / "w.pt").exists()


def test_init_checkpoint_must_fit(lip_root, tmp_path):
    torch.save({"state_dict": GCCPM(num_refinement_stages=2).state_dict()}, tmp_path / "two.pt")
    with pytest.raises(TrainEstimatorError, match="(?s)--init.*unexpected keys"):
        train_estimator(lip_root, tmp_path / "w.pt", EstimatorTrainConfig(epochs=1, **TINY), init=tmp_path / "two.pt")


def test_bad_root_errors(tmp_path):
    with pytest.raises(TrainEstimatorError, match="not a directory"):
        train_estimator(tmp_path / "absent", tmp_path / "w.pt", EstimatorTrainConfig(epochs=1, **TINY))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainEstimatorError, match="(?s)not a usable LIP data set.*lip_train_set.csv"):
        train_estimator(tmp_path / "empty", tmp_path / "w.pt", EstimatorTrainConfig(epochs=1, **TINY))
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
    """train-estimator is configured as the other commands: EstimatorTrainConfig's defaults, a YAML file
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
    assert seen[-1][0] == EstimatorTrainConfig()                                 # the dataclass's defaults alone
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


def test_narrow_estimator_fits_a_narrow_refinement_module(lip_root, tmp_path):
    """num_channels: an estimator as wide as a narrow Pose Estimation branch (the demo preset's
    32 channels, here 16) whose refinement stage model.pose_init can load; read back at its width."""
    from tests.model.helpers import small_config
    from vireid.model import PoseVIReIDNet, load_pose_branch_from_lip

    out = tmp_path / "narrow.pt"
    train_estimator(lip_root, out, EstimatorTrainConfig(epochs=1, num_channels=16, **TINY))
    sd = torch.load(out, weights_only=True)["state_dict"]
    assert sd["cpm.1.0.weight"].shape[0] == 16
    assert sd["refinement_stages.0.trunk.0.encoder1.0.0.weight"].shape[1] == 16 + NUM_JOINTS + 1
    model = load_gccpm_checkpoint(out)                          # the width read from the weights
    assert model.cpm[1][0].out_channels == 16 and len(model.refinement_stages) == 1
    net = PoseVIReIDNet(small_config("full", heatmap_channels=NUM_JOINTS, deconv_channels=16, refine_channels=16))
    report = load_pose_branch_from_lip(net, out, stage_index=0)
    assert len(report["adapted"]) == 2                          # 17 maps -> 16 joints
    assert torch.equal(net.pose_branch.refinement.state_dict()[report["loaded"][0]],
                       sd[f"refinement_stages.0.{report['loaded'][0]}"])
    # the default width does not fit that module, and says where
    with pytest.raises(ValueError, match="does not fit the Refinement Module"):
        load_pose_branch_from_lip(net, {"state_dict": GCCPM(num_refinement_stages=1).state_dict()}, stage_index=0)
    # --init of another width is refused by name
    with pytest.raises(TrainEstimatorError, match="--init: .*16 feature channels, num_channels is 128"):
        train_estimator(lip_root, tmp_path / "w.pt", EstimatorTrainConfig(epochs=1, **TINY), init=out)
    with pytest.raises(ValueError, match="num_channels must be positive"):
        EstimatorTrainConfig(num_channels=0)
