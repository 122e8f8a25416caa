"""vireid.engine.trainer on a tiny synthetic SYSU cache: the loss goes down, outputs, exact
resume, the non-finite guard, hold-out validation and the start-up checks."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import vireid.engine.joint_loop as loop_mod
from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator
from pipeline.heatmaps import HeatmapJob
from pipeline.synth import synthesize
from vireid.data.scan import scan
from vireid.cache.reader import CacheConfig, CacheError
from vireid.model.checkpoint import build_model_from_checkpoint, load_checkpoint
from vireid.engine.config import load_config
from vireid.engine.runlog import read_log
from vireid.engine.trainer import NonFiniteLossError, TrainError, train

HW = (96, 48)
#: ResNet-18 with narrow heads at 96x48 (6 ReID rows), 2 ids x 2 RGB x 2 IR per batch, CPU.
TINY = ["model.backbone=resnet18", "data.input_size=[96, 48]", "model.stripe_dim=32", "model.teacher_dim=64",
        "model.pose_channels=64", "model.deconv_channels=32", "model.refine_channels=32", "data.num_ids=2",
        "data.num_per_modality=2", "data.workers=0", "device=cpu", "progress=false", "model.pretrained=null"]


def tiny_config(*overrides: str):
    return load_config(None, TINY + list(overrides))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """8 synthetic identities, one image per camera: 6 training ids (train + val), 27 images."""
    tmp = tmp_path_factory.mktemp("train")
    synthesize("sysu", tmp / "SYSU", ids=8, seed=1, images_per_camera=1)
    manifest = scan("sysu", tmp / "SYSU")
    HeatmapJob(manifest, tmp / "SYSU", tmp / "cache", KeypointFileEstimator(tmp / "SYSU" / SIDE_FILE),
               CacheConfig(input_size=HW, stride=4, sigma=3.0, shard_size=16)).run()
    return tmp / "cache"


def _steps(run: Path):
    return [r for r in read_log(run / "log.jsonl") if r["kind"] == "step"]


def test_short_run_lowers_the_loss_and_writes_outputs(cache_dir, tmp_path):
    # no crop / erasing and a small fixed epoch: 30 steps over 27 images memorise them. The
    # heatmap head starts near zero (the demo's choice): from a random ResNet at lr 0.01 the
    # Xavier-initialised head's first steps overshoot (pose loss 1.4 -> 80 at step 2 on this
    # cache's linear-resized crops, inf at step 7 on its anti-aliased ones)
    cfg = tiny_config("epochs=6", "data.batches_per_epoch=5", "data.pad=0", "data.erase_p=0",
                      "model.heatmap_head_init=small")
    res = train(cfg, cache_dir, tmp_path / "run")
    steps = _steps(tmp_path / "run")
    assert len(steps) == 30 and res.global_step == 30 and res.epochs_done == 6
    assert [s["step"] for s in steps] == list(range(1, 31))
    assert set(steps[0]) >= {"id", "hctri", "pose", "kd", "total", "lr", "images_per_s", "epoch", "iter"}
    first = np.mean([s["total"] for s in steps[:5]])
    last = np.mean([s["total"] for s in steps[-5:]])
    assert last < first - 0.5, (first, last)
    assert np.mean([s["pose"] for s in steps[-5:]]) < np.mean([s["pose"] for s in steps[:5]])
    epochs = [r for r in read_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    # outputs
    assert res.last == tmp_path / "run" / "last.pt" and res.best is None      # no hold-out: keep the last epoch
    ck = load_checkpoint(res.last)
    assert ck["epoch"] == 6 and ck["global_step"] == 30 and ck["dataset"] == "sysu" and ck["trial"] is None
    assert ck["model_config"]["num_classes"] == len(ck["label_map"]) == 6
    assert ck["cache_attrs"]["input_size"] == [96, 48]
    assert json.loads((cache_dir / "cache.json").read_text())["manifest_hash"] == ck["manifest_hash"]
    assert {"optimizer", "scheduler", "rng", "sampler", "config"} <= set(ck)
    model, _ = build_model_from_checkpoint(res.last)                             # what vireid-eval does
    assert model.config.input_size == HW
    png = cv2.imread(str(tmp_path / "run" / "losses.png"))
    assert png is not None and png.shape[0] > 100
    saved = load_config(tmp_path / "run" / "config.yaml")
    assert saved == cfg


def test_resume_gives_the_same_weights_as_a_straight_run(cache_dir, tmp_path):
    straight = train(tiny_config("epochs=4", "data.batches_per_epoch=2"), cache_dir, tmp_path / "straight")
    train(tiny_config("epochs=2", "data.batches_per_epoch=2"), cache_dir, tmp_path / "split")
    # an interrupted third epoch leaves log lines past the checkpoint: resume drops them
    with open(tmp_path / "split" / "log.jsonl", "a") as fh:
        fh.write(json.dumps({"kind": "step", "epoch": 3, "step": 5, "iter": 1, "total": 99.0}) + "\n")
    with pytest.raises(TrainError, match="already holds a run"):
        train(tiny_config("epochs=4", "data.batches_per_epoch=2"), cache_dir, tmp_path / "split")
    with pytest.raises(TrainError, match="optim.lr"):
        train(tiny_config("epochs=4", "data.batches_per_epoch=2", "optim.lr=0.02"), cache_dir, tmp_path / "split",
              resume="auto")
    resumed = train(tiny_config("epochs=4", "data.batches_per_epoch=2"), cache_dir, tmp_path / "split",
                    resume="auto")
    assert resumed.epochs_done == straight.epochs_done == 4
    a, b = load_checkpoint(straight.last), load_checkpoint(resumed.last)
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    la, lb = _steps(tmp_path / "straight"), _steps(tmp_path / "split")
    assert [s["step"] for s in lb] == list(range(1, 9))
    assert [s["total"] for s in la] == [s["total"] for s in lb]


def test_non_finite_loss_stops_with_the_name_and_step(cache_dir, tmp_path, monkeypatch):
    real = loop_mod.compute_losses
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        losses = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:                                  # epoch 2, first step
            losses["pose"] = losses["pose"] * float("nan")
        return losses

    monkeypatch.setattr(loop_mod, "compute_losses", poisoned)
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match=r"loss 'pose' is nan at epoch 2, step 1 .*global step 3.*"
                                                 r"holds epoch 1, the last good one"):
        train(tiny_config("epochs=3", "data.batches_per_epoch=2"), cache_dir, run)
    ck = load_checkpoint(run / "last.pt")
    assert ck["epoch"] == 1 and ck["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert (run / "losses.png").is_file()


def _count_calls(monkeypatch, cls, name="__init__"):
    """How often ``cls.name`` runs (a counter wrapping the real method)."""
    calls = {"n": 0}
    real = getattr(cls, name)

    def counted(self, *args, **kwargs):
        calls["n"] += 1
        return real(self, *args, **kwargs)
    monkeypatch.setattr(cls, name, counted)
    return calls


def test_a_run_derives_its_settings_and_losses_once(cache_dir, tmp_path, monkeypatch):
    """From loading the configuration to the end of a run with validation: the transform and
    sampler settings are built once (the configuration's check builds them, training reuses
    them), the model config once, the cache geometry checked once, its metadata gathered
    once, and the hetero-center triplet loss built once, not at every step."""
    import vireid.engine.config as config_module
    from vireid.cache.geometry import Geometry
    from vireid.cache.reader import HeatmapCache
    from vireid.losses import HeteroCenterTripletLoss
    from vireid.model import ModelConfig

    counts = {}
    for name in ("TransformConfig", "SamplerConfig"):
        real = getattr(config_module, name)

        def build(*args, _real=real, _name=name, **kwargs):
            counts[_name] = counts.get(_name, 0) + 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(config_module, name, build)
    model_configs = _count_calls(monkeypatch, ModelConfig, "__post_init__")
    geometry_checks = _count_calls(monkeypatch, Geometry, "check")
    metadata = _count_calls(monkeypatch, HeatmapCache, "metadata")
    losses = _count_calls(monkeypatch, HeteroCenterTripletLoss)
    cfg = tiny_config("epochs=1", "data.batches_per_epoch=2", "data.holdout=val", "val_every=1")
    result = train(cfg, cache_dir, tmp_path / "run")
    assert result.global_step == 2 and len(result.val_history) == 1
    assert counts == {"TransformConfig": 1, "SamplerConfig": 1}
    assert (model_configs["n"], geometry_checks["n"], metadata["n"], losses["n"]) == (1, 1, 1, 1)


def test_holdout_validation_selects_best(cache_dir, tmp_path):
    cfg = tiny_config("epochs=2", "data.batches_per_epoch=1", "data.holdout=val", "val_every=1")
    res = train(cfg, cache_dir, tmp_path / "run")
    vals = [r for r in read_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "val"]
    assert [v["epoch"] for v in vals] == [1, 2]
    assert all(0 <= v["mAP"] <= 1 and 0 <= v["R1"] <= 1 for v in vals)
    best = load_checkpoint(res.best)
    assert best["val"]["mAP"] == max(v["mAP"] for v in vals)
    assert best["model_config"]["num_classes"] == 5                          # the val identity is held out
    assert (tmp_path / "run" / "val.png").is_file()
    assert not any("pckh_rgb" in v for v in vals)                  # one merged map: no joints to score


def test_validation_reports_the_pose_branch_pckh_per_modality(cache_dir, tmp_path):
    cfg = tiny_config("epochs=1", "data.batches_per_epoch=1", "data.holdout=val", "val_every=1",
                      "model.heatmap_channels=16")
    train(cfg, cache_dir, tmp_path / "run")
    (val,) = [r for r in read_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "val"]
    assert 0 <= val["pckh_rgb"] <= 1 and 0 <= val["pckh_ir"] <= 1


def test_non_finite_validation_features_stop_with_one_line(cache_dir, tmp_path, monkeypatch):
    """Features that are NaN in eval mode (losses finite in training) stop the run with a
    TrainError naming the feature, not a traceback from the ranking's NaN distances."""
    import vireid.engine.validation as validation

    real = validation.extract_features

    def nan_rows(*args, **kwargs):
        feats = real(*args, **kwargs)
        feats["f_id"][0, 0] = np.nan
        return feats
    monkeypatch.setattr(validation, "extract_features", nan_rows)
    cfg = tiny_config("epochs=1", "data.batches_per_epoch=1", "data.holdout=val", "val_every=1")
    with pytest.raises(TrainError, match=r"validation: f_id of 1 of \d+ held-out images is not finite"):
        train(cfg, cache_dir, tmp_path / "run")


def test_cache_and_config_mismatch_are_clear_errors(cache_dir, tmp_path):
    # the one geometry check (vireid.cache.geometry.Geometry.check, at start-up: trainer.check_cache)
    with pytest.raises(CacheError, match=r"cache.json: input_size 96x48 differs from the configured data.input_size "
                                         r"128x64 \(heatmaps 24x12 in the cache, 32x16 configured\): set "
                                         r"data.input_size=\[96, 48\] to train on this cache, or rebuild it with "
                                         r"`vireid-prep heatmaps --input-size 128x64 --stride 4`"):
        train(tiny_config("data.input_size=[128, 64]"), cache_dir, tmp_path / "a")
    with pytest.raises(CacheError, match=r"cache.json: stride 4 differs from the configured data.stride 8 "
                                         r"\(heatmaps 24x12 in the cache, 12x6 configured\): set data.stride=4"):
        train(tiny_config("data.stride=8"), cache_dir, tmp_path / "a")
    with pytest.raises(TrainError, match="holds sysu data but the configuration says dataset: regdb"):
        train(tiny_config("dataset=regdb"), cache_dir, tmp_path / "b")
    with pytest.raises(TrainError, match="--trial 2 applies to RegDB only"):
        train(tiny_config(), cache_dir, tmp_path / "c", trial=2)
    with pytest.raises(TrainError, match="only 6 identities, fewer than num_ids=8"):
        train(tiny_config("data.num_ids=8"), cache_dir, tmp_path / "d")
    broken = tmp_path / "broken"
    shutil.copytree(cache_dir, broken)
    next(broken.glob("shard-*.h5")).unlink()
    with pytest.raises(CacheError, match="shard listed in index.json is missing"):
        train(tiny_config(), broken, tmp_path / "e")
    assert not (tmp_path / "a").exists() and not (tmp_path / "e").exists()


def test_identity_without_ir_is_named(tmp_path):
    from tests.inputs.test_dataset import build_cache
    from tests.data.trees import make_sysu

    cache, _ = build_cache(tmp_path, "SYSU", make_sysu, "sysu", drop=("cam3/0004", "cam6/0004"))
    with pytest.raises(TrainError, match=r"without IR images: \[4\]"):
        train(tiny_config(), cache.root, tmp_path / "run")


def test_regdb_trial_tables(tmp_path):
    synthesize("regdb", tmp_path / "RegDB", ids=6, seed=1, images_per_camera=2)
    manifest = scan("regdb", tmp_path / "RegDB")
    HeatmapJob(manifest, tmp_path / "RegDB", tmp_path / "cache", KeypointFileEstimator(tmp_path / "RegDB" / SIDE_FILE),
               CacheConfig(input_size=HW, stride=4, sigma=3.0, shard_size=64)).run()
    cfg = tiny_config("dataset=regdb", "epochs=1", "data.batches_per_epoch=1")
    res = train(cfg, tmp_path / "cache", tmp_path / "run", trial=2)
    ck = load_checkpoint(res.last)
    assert ck["dataset"] == "regdb" and ck["trial"] == 2 and ck["config"]["data"]["trial"] == 2
    train_ids = {manifest.by_path()[p].pid for p, _ in manifest.splits["trial:2"]["train:visible"]}
    assert set(ck["label_map"]) == train_ids


def test_speed_switches_run_on_cpu(cache_dir, tmp_path):
    """Explicit bf16 autocast and channels-last on a CPU: one step each, finite losses; fp16
    uses a GradScaler whose state lands in the checkpoint's 'scaler' slot."""
    one = ["epochs=1", "data.batches_per_epoch=1"]
    auto = train(tiny_config(*one), cache_dir, tmp_path / "auto")
    assert load_checkpoint(auto.last)["scaler"] is None                     # auto on a CPU: float32, no scaler
    for name, switch in (("bf16", "speed.amp=bf16"), ("cl", "speed.channels_last=true"), ("fp16", "speed.amp=fp16")):
        res = train(tiny_config(*one, switch), cache_dir, tmp_path / name)
        (step,) = _steps(tmp_path / name)
        assert all(np.isfinite(step[k]) for k in ("id", "hctri", "pose", "kd", "total")), (name, step)
        ck = load_checkpoint(res.last)
        assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point()), name
        assert (ck["scaler"] is not None) == (name == "fp16"), name
    # bf16 autocast really changes the arithmetic (the loss is not the float32 one)
    assert _steps(tmp_path / "bf16")[0]["total"] != _steps(tmp_path / "auto")[0]["total"]
