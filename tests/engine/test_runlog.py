"""The run log: JSON lines, and the optional TensorBoard events of the same records."""
from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from vireid.engine.runlog import RunLog, read_log

pytest.importorskip("tensorboard", reason="the tensorboard extra (in dev) is not installed")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def scalars(folder: Path) -> dict:
    events = list(folder.glob("events.out.tfevents.*"))
    assert events, f"no events file in {folder}"
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_records_go_to_tensorboard_too(tmp_path):
    with RunLog(tmp_path / "log.jsonl", tensorboard=tmp_path / "tb") as log:
        for step in (1, 2, 3):
            log.write("step", epoch=1, step=step, iter=step, lr=0.01, images_per_s=10.0, id=5.0 - step, total=9.0 - step)
        log.write("epoch", epoch=1, step=3, seconds=1.5, id=3.0, total=7.0)
        log.write("val", epoch=1, step=3, mAP=0.25, R1=0.5)
    got = scalars(tmp_path / "tb")
    assert got["train/id"] == [(1, 4.0), (2, 3.0), (3, 2.0)]
    assert [s for s, _ in got["train/total"]] == [1, 2, 3] and got["train/lr"][0][1] == pytest.approx(0.01)
    assert got["epoch/total"] == [(3, 7.0)] and got["val/mAP"] == [(3, 0.25)]
    assert not any(t.endswith(("/step", "/epoch", "/iter")) for t in got)
    assert len(read_log(tmp_path / "log.jsonl")) == 5                 # the JSON lines are unchanged


def test_missing_package_is_a_clear_error(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(RuntimeError, match=r"tensorboard: true.*vireid\[tensorboard\]"):
        RunLog(tmp_path / "log.jsonl", tensorboard=tmp_path / "tb")
    assert RunLog(tmp_path / "log2.jsonl").path.name == "log2.jsonl"    # off: no tensorboard needed


def test_short_training_run_writes_the_loss_scalars(tmp_path):
    from tests.engine.test_trainer import tiny_config
    from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator
    from pipeline.heatmaps import HeatmapJob
    from pipeline.synth import synthesize
    from vireid.data.scan import scan
    from vireid.cache.reader import CacheConfig
    from vireid.engine.trainer import train

    synthesize("sysu", tmp_path / "SYSU", ids=8, seed=1, images_per_camera=1)
    manifest = scan("sysu", tmp_path / "SYSU")
    HeatmapJob(manifest, tmp_path / "SYSU", tmp_path / "cache", KeypointFileEstimator(tmp_path / "SYSU" / SIDE_FILE),
               CacheConfig(input_size=(96, 48), stride=4, sigma=3.0, shard_size=16)).run()
    cfg = tiny_config("epochs=1", "data.batches_per_epoch=3", "tensorboard=true")
    train(cfg, tmp_path / "cache", tmp_path / "run")
    got = scalars(tmp_path / "run" / "tensorboard")
    steps = [r for r in read_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "step"]
    for name in ("id", "hctri", "pose", "kd", "total", "lr"):
        assert [s for s, _ in got[f"train/{name}"]] == [1, 2, 3], name
        assert [v for _, v in got[f"train/{name}"]] == pytest.approx([r[name] for r in steps]), name
    assert "epoch/total" in got
