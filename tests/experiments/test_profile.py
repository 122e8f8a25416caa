"""vireid-train --profile (vireid.experiments.profile, vireid.engine.steptimer): each phase gets its
own time, each loss term its own, the values are the trainer's, nothing is written."""
from __future__ import annotations

import time

import pytest
import torch
from click.testing import CliRunner

import vireid.losses.total as total_mod
from tests.engine.test_train_cli import _args, _one_line
from tests.engine.test_trainer import TINY, _steps, cache_dir, tiny_config  # noqa: F401 - the cache fixture
from vireid.cli.train import cli
from vireid.inputs.dataset import CacheDataset
from vireid.experiments.profile import profile_training
from vireid.engine.steptimer import PHASES, ProfileStop, StepTimer
from vireid.engine.trainer import train
from vireid.losses import LossConfig

DATA_SLEEP = 0.04        # seconds per sample: 8 samples per step
POSE_SLEEP = 1.0         # seconds per pose-loss call (far above any term's own time: a loaded 2-core
                         # machine measured 0.47 s for one of the other terms of the tiny model)


def test_marks_enclose_the_work_of_their_phase(cache_dir, tmp_path, monkeypatch):  # noqa: F811
    """In every step the samples are read before the 'data wait' mark, the losses run between
    'to device' and 'forward', the backward between the first 'other' and 'backward', the SGD
    step between 'backward' and 'optimizer'; the run stops after the timer's limit."""
    events = []

    class Recorder(StepTimer):
        def mark(self, phase):
            events.append(phase)
            super().mark(phase)

    def spy(name, real):
        def wrapped(*args, **kwargs):
            events.append(name)
            return real(*args, **kwargs)
        return wrapped
    monkeypatch.setattr(CacheDataset, "__getitem__", spy("read", CacheDataset.__getitem__))
    monkeypatch.setattr(total_mod, "pose_loss", spy("pose loss", total_mod.pose_loss))
    monkeypatch.setattr(torch.Tensor, "backward", spy("backward pass", torch.Tensor.backward))
    monkeypatch.setattr(torch.optim.SGD, "step", spy("sgd step", torch.optim.SGD.step))
    timer = Recorder(3)
    with pytest.raises(ProfileStop):
        train(tiny_config(), cache_dir, tmp_path / "run", timer=timer)
    assert not (tmp_path / "run" / "last.pt").exists()                 # stopped inside the first epoch
    one_step = (["read"] * 8 + ["data wait", "to device", "pose loss", "forward", "other", "backward pass",
                                "backward", "sgd step", "optimizer", "other"])
    assert events == one_step * 3
    assert len(timer.steps) == 3 and timer.images == [8, 8, 8]


@pytest.fixture
def one_thread():
    """One torch thread: on a busy 2-core machine two threads ran 2.5-4x slower than one (and a
    loss term took 0.67 s instead of 0.01 s), which would blur the timings compared below."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_phases_and_loss_terms_get_their_own_time(cache_dir, monkeypatch, one_thread):  # noqa: F811
    """Slow the data and the pose loss down by known amounts: the data wait and the pose term
    show them, the other terms do not (where each phase's work happens: the test above)."""
    real_item = CacheDataset.__getitem__
    real_pose = total_mod.pose_loss

    def slow_item(self, item):
        time.sleep(DATA_SLEEP)
        return real_item(self, item)

    def slow_pose(*args, **kwargs):
        time.sleep(POSE_SLEEP)
        return real_pose(*args, **kwargs)
    monkeypatch.setattr(CacheDataset, "__getitem__", slow_item)
    monkeypatch.setattr(total_mod, "pose_loss", slow_pose)
    t0 = time.perf_counter()
    report = profile_training(tiny_config(), cache_dir, steps=2, warmup=1)
    wall = time.perf_counter() - t0

    assert len(report.steps) == 3 and len(report.measured) == 2 and report.images == [8, 8, 8]
    means = report.phase_means()
    assert set(means) == set(PHASES) and all(v >= 0 for v in means.values())
    assert means["data wait"] >= 8 * DATA_SLEEP                      # workers=0: the loader runs in the step
    assert means["forward"] >= POSE_SLEEP                             # the losses are part of the forward
    assert report.step_seconds == pytest.approx(sum(means.values()))
    assert sum(sum(s.values()) for s in report.steps) < wall
    assert report.data_wait_share == pytest.approx(means["data wait"] / report.step_seconds)
    assert report.images_per_s == pytest.approx(8 / report.step_seconds)
    assert report.compute_images_per_s == pytest.approx(8 / (report.step_seconds - means["data wait"]))

    assert set(report.loss_seconds) == {"id", "hctri", "pose", "kd"}
    assert report.loss_seconds["pose"] >= POSE_SLEEP
    assert max(v for k, v in report.loss_seconds.items() if k != "pose") < POSE_SLEEP
    text = report.format()
    for word in ("| data wait |", "| backward |", "| optimizer step |", "| pose |", "images/s", "peak memory"):
        assert word in text, word


def test_values_are_the_trainers_and_nothing_is_kept(cache_dir, tmp_path):  # noqa: F811
    """The profiled run is the trainer's run: its last step's losses equal those an ordinary run
    of the same steps logs; the weighted total is eq. 21's."""
    report = profile_training(tiny_config(), cache_dir, steps=1, warmup=1)
    train(tiny_config("epochs=1", "data.batches_per_epoch=2"), cache_dir, tmp_path / "run")
    last = _steps(tmp_path / "run")[-1]
    for name in ("id", "hctri", "pose", "kd"):
        assert report.loss_values[name] == pytest.approx(last[name], rel=1e-5), name
    c = LossConfig()
    v = report.loss_values
    assert v["total"] == pytest.approx(v["id"] + c.beta * v["hctri"] + c.lambda_pose * v["pose"] + c.gamma * v["kd"])
    assert v["total"] == pytest.approx(last["total"], rel=1e-5)
    assert report.losses_finite and report.world_size == 1 and report.backend is None
    assert report.peak_memory_mib > 0 and report.memory_kind == "peak RSS of the process"


def test_step_timer_stops_after_its_limit():
    timer = StepTimer(2)
    timer.start(torch.device("cpu"))
    timer.mark("data wait")
    timer.end_step()
    with pytest.raises(ProfileStop):
        timer.end_step()
    assert len(timer.steps) == 2 and set(timer.steps[0]) == {"data wait", "other"}
    with pytest.raises(ValueError):
        StepTimer(0)


def test_cli_profile_prints_the_breakdown_and_writes_nothing(cache_dir, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    sets = [a for kv in TINY for a in ("--set", kv)]
    args = _args(cache_dir, tmp_path / "run", *sets)
    without_out = args[:4] + args[6:]                                   # drop --out RUN
    res = CliRunner().invoke(cli, without_out + ["--profile", "2"])
    assert res.exit_code == 0, res.output
    for word in ("profile: 2 step(s) of 8 images on cpu", "| data wait |", "| forward (network + losses) |",
                 "| backward |", "| optimizer step |", "| hctri |", "| kd |", "images/s"):
        assert word in res.output, word
    assert list(tmp_path.iterdir()) == []
    res = CliRunner().invoke(cli, args + ["--profile", "2"])
    assert res.exit_code == 2 and "--profile writes nothing" in res.output
    res = CliRunner().invoke(cli, without_out)
    assert res.exit_code == 2 and "Missing option '--out'" in res.output
    res = CliRunner().invoke(cli, without_out + ["--profile", "0"])
    assert res.exit_code == 2 and "--profile" in res.output
    res = CliRunner().invoke(cli, without_out + ["--profile", "2", "--set", "optim.lrr=1"])
    assert res.exit_code == 1 and "unknown key 'optim.lrr'" in _one_line(res.output)
