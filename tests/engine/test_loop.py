"""vireid.engine.loop: the skeleton both trainers share (device, resume checks, the loss guard, the epochs)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vireid.engine.errors import NonFiniteLossError
from vireid.engine.loop import (DeviceError, EpochLoop, EpochStats, changed_keys, first_non_finite, read_with_fallback,
                                resolve_device)
from vireid.io import previous_path


# ----------------------------------------------------------------------------- device and resume
def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="'cuda:1' asked for but CUDA is not available here; use --device cpu"):
            resolve_device("cuda:1")
    else:
        with pytest.raises(DeviceError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_changed_keys_names_each_nested_key():
    saved = {"lr": 0.1, "data": {"size": (96, 48), "workers": 2}, "gone": 1}
    now = {"lr": 0.1, "data": {"size": [96, 64], "workers": 4}, "new": 0}
    assert changed_keys(saved, now) == ["data.size", "data.workers", "gone", "new"]
    assert changed_keys(saved, now, may_change={"data.workers", "gone", "new"}) == ["data.size"]
    assert changed_keys(saved, {**now, "data": {"size": (96, 48), "workers": 4}}, {"data.workers", "gone", "new"}) == []


def _reader(path: Path) -> str:
    text = path.read_text() if path.is_file() else "missing"
    if not text.startswith("good"):
        raise ValueError(f"{path}: {text}")
    return text


def test_read_with_fallback(tmp_path):
    last = tmp_path / "last.pt"
    last.write_text("good 2")
    assert read_with_fallback(last, _reader, ValueError) == ("good 2", last, None)
    previous_path(last).write_text("good 1")
    last.write_text("truncated")
    state, used, error = read_with_fallback(last, _reader, ValueError)
    assert (state, used) == ("good 1", previous_path(last)) and str(error) == f"{last}: truncated"
    previous_path(last).write_text("flipped")
    with pytest.raises(ValueError, match=r"last.pt: truncated; the previous state is no better: .*last.prev.pt: flipped"):
        read_with_fallback(last, _reader, ValueError, what="state")
    previous_path(last).unlink()
    with pytest.raises(ValueError, match=r"last.pt: truncated$"):
        read_with_fallback(last, _reader, ValueError)


# ----------------------------------------------------------------------------- the epochs
def test_first_non_finite():
    assert first_non_finite({"a": 1.0, "b": -2.0}) is None
    assert first_non_finite({"a": 1.0, "b": float("inf"), "c": float("nan")}) == ("b", float("inf"))
    stats = EpochStats()
    stats.add({"a": 1.0, "b": 2.0})
    stats.add({"a": 2.0, "b": 5.0})
    assert stats.means() == {"a": 1.5, "b": 3.5} and stats.steps == 2


class _Toy(EpochLoop):
    """w * x regressed on 3 * x with SGD; batch ``poison`` (a global count) gives a NaN loss."""

    def __init__(self, poison: int = 0) -> None:
        torch.manual_seed(0)
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.optimizer = torch.optim.SGD([self.w], lr=0.1)
        self.poison, self.count, self.ended, self.closed = poison, 0, [], 0

    def batches(self, epoch):
        try:
            for x in (1.0, 2.0):
                yield torch.tensor(x)
        finally:
            self.closed += 1

    def train_step(self, batch):
        self.count += 1
        loss = (self.w * batch - 3 * batch) ** 2
        if self.count == self.poison:
            loss = loss * float("nan")
        return {"total": loss, "abs_w": float(self.w.detach().abs())}

    def end_of_epoch(self, epoch, stats):
        self.ended.append((epoch, stats.steps, stats.means(), float(self.w.detach())))


def test_epoch_loop_steps_sums_and_ends_each_epoch():
    loop = _Toy()
    loop.run(1, 3)                                          # epochs 1 and 2 (0-based): a resume after epoch 1
    # hand computation: w <- w - 0.1 * 2 x^2 (w - 3) for x = 1 then 2, from w = 0
    w, by_epoch = 0.0, []
    for _ in range(2):
        losses = []
        for x in (1.0, 2.0):
            losses.append((w * x - 3 * x) ** 2)
            w -= 0.1 * 2 * x * x * (w - 3)
        by_epoch.append((sum(losses) / 2, w))
    assert [(e, n) for e, n, _, _ in loop.ended] == [(1, 2), (2, 2)] and loop.closed == 2
    for (_, _, means, got_w), (mean_loss, want_w) in zip(loop.ended, by_epoch):
        assert means["total"] == pytest.approx(mean_loss, rel=1e-6) and got_w == pytest.approx(want_w, rel=1e-6)


def test_a_non_finite_loss_stops_before_the_update():
    loop = _Toy(poison=3)                                   # epoch 2 (1-based), its first batch
    with pytest.raises(NonFiniteLossError, match=r"loss 'total' is nan at epoch 2, step 1 of the epoch"):
        loop.run(0, 3)
    assert len(loop.ended) == 1 and float(loop.w.detach()) == loop.ended[0][3]     # no update after the last good epoch
    assert loop.closed == 2                                                # the interrupted epoch's batches too
