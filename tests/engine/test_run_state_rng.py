"""Resume across hosts: each rank saves and restores only its own GPU's CUDA RNG state.

No GPU is needed: torch.cuda's RNG functions are replaced by a stand-in host with a given
number of devices. Its ``set_rng_state_all`` indexes devices as torch's does, so a state
list longer than the host's device count raises the IndexError torch raises there."""
from __future__ import annotations

import logging
from typing import Dict, List

import pytest
import torch

from vireid.engine import run_state
from vireid.engine.run_state import rng_state, set_rng_state


class FakeHost:
    """``count`` CUDA devices, ``current`` the one this rank uses; records what is restored."""

    def __init__(self, count: int, current: int = 0) -> None:
        self.count, self.current = count, current
        self.states: Dict[int, torch.Tensor] = {i: torch.full((8,), i, dtype=torch.uint8) for i in range(count)}
        self.restored: List[tuple] = []

    def install(self, monkeypatch) -> None:
        cuda = torch.cuda
        monkeypatch.setattr(cuda, "is_available", lambda: self.count > 0)
        monkeypatch.setattr(cuda, "is_initialized", lambda: self.count > 0)
        monkeypatch.setattr(cuda, "device_count", lambda: self.count)
        monkeypatch.setattr(cuda, "current_device", self._current)
        monkeypatch.setattr(cuda, "get_rng_state", self.get)
        monkeypatch.setattr(cuda, "get_rng_state_all", lambda: [self.get(i) for i in range(self.count)])
        monkeypatch.setattr(cuda, "set_rng_state", self.set)
        monkeypatch.setattr(cuda, "set_rng_state_all", lambda states: [self.set(s, i) for i, s in enumerate(states)])

    def _current(self) -> int:
        if not self.count:
            raise RuntimeError("no CUDA device")
        return self.current

    def _index(self, device) -> int:
        index = self.current if device in (None, "cuda") else int(torch.device("cuda", device).index
                                                                  if isinstance(device, int) else device.index)
        if index >= self.count:                      # torch: default_generators[index] -> IndexError
            raise IndexError(f"device {index} of a host with {self.count}")
        return index

    def get(self, device=None) -> torch.Tensor:
        return self.states[self._index(device)].clone()

    def set(self, state: torch.Tensor, device=None) -> None:
        self.restored.append((self._index(device), int(state[0])))


def _cpu_part() -> dict:
    return {"python": __import__("random").getstate(), "numpy": __import__("numpy").random.get_state(),
            "torch": torch.get_rng_state()}


def test_a_rank_saves_only_its_own_device_state(monkeypatch):
    host = FakeHost(count=8, current=3)                              # rank 3 of a torchrun on 8 GPUs
    host.install(monkeypatch)
    state = rng_state()
    assert torch.is_tensor(state["cuda"]) and int(state["cuda"][0]) == 3 and state["cuda_device"] == 3
    # resumed on a 1-GPU host: the rank's device is cuda:0 there, its own state goes back on it
    small = FakeHost(count=1)
    small.install(monkeypatch)
    set_rng_state(state)
    assert small.restored == [(0, 3)]


@pytest.mark.parametrize("count", [1, 0], ids=["one-gpu", "no-gpu"])
def test_an_old_checkpoint_with_eight_device_states_resumes_on_a_smaller_host(monkeypatch, caplog, count):
    big = FakeHost(count=8)
    big.install(monkeypatch)
    old = {**_cpu_part(), "cuda": torch.cuda.get_rng_state_all()}   # what checkpoints held before: every GPU's
    host = FakeHost(count=count)
    host.install(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=run_state.__name__):
        set_rng_state(old)                                            # never an IndexError
    if count:
        assert host.restored == [(0, 0)]                              # the entry of this rank's device only
        assert not caplog.records
    else:
        assert host.restored == [] and "has no CUDA" in caplog.text


def test_an_old_checkpoint_without_this_devices_entry_is_skipped_with_a_warning(monkeypatch, caplog):
    one = FakeHost(count=1)
    one.install(monkeypatch)
    old = {**_cpu_part(), "cuda": torch.cuda.get_rng_state_all()}   # saved on a 1-GPU host
    host = FakeHost(count=4, current=2)                               # resumed by the rank on cuda:2
    host.install(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=run_state.__name__):
        set_rng_state(old)
    assert host.restored == [] and "none for this rank's device cuda:2" in caplog.text
