"""Mixed precision follows what the GPU computes natively (``speed.amp: auto`` / ``bf16-native``).

No GPU is needed: torch.cuda's queries are replaced by a stand-in device of a given compute
capability whose ``is_bf16_supported`` behaves as torch's does (by default it counts
emulation, so a V100 or a T4 answers yes; with ``including_emulation=False`` only
capability >= 8.0 does)."""
from __future__ import annotations

from typing import Tuple

import pytest
import torch

from vireid.engine.speed import SpeedConfig, cuda_bf16_native, resolve_speed

GPUS = {"A100": (8, 0), "V100": (7, 0), "T4": (7, 5)}


def _fake_gpu(monkeypatch, capability: Tuple[int, int], takes_flag: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    if takes_flag:
        def is_bf16_supported(including_emulation: bool = True) -> bool:
            return capability >= (8, 0) or including_emulation         # emulation: every CUDA GPU says yes
    else:
        def is_bf16_supported() -> bool:                                 # an older torch: no argument
            return True
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)


@pytest.mark.parametrize("takes_flag", [True, False], ids=["including_emulation", "capability"])
@pytest.mark.parametrize("gpu", sorted(GPUS))
def test_auto_precision_is_bf16_only_where_native(monkeypatch, gpu, takes_flag):
    _fake_gpu(monkeypatch, GPUS[gpu], takes_flag)
    native = gpu == "A100"
    assert cuda_bf16_native() is native
    auto = resolve_speed(SpeedConfig(amp="auto"), "cuda")
    assert auto.amp_dtype == (torch.bfloat16 if native else torch.float16)
    assert auto.grad_scaler is (not native)                             # fp16 always with a GradScaler
    assert resolve_speed(SpeedConfig(amp=True), "cuda:0").amp_dtype == auto.amp_dtype
    # bf16-native: bfloat16 or float32, never fp16
    assert resolve_speed(SpeedConfig(amp="bf16-native"), "cuda").amp_dtype == (torch.bfloat16 if native else None)


def test_explicit_bf16_on_an_emulating_gpu_is_kept_with_a_warning(monkeypatch, caplog):
    _fake_gpu(monkeypatch, GPUS["V100"])
    with caplog.at_level("WARNING", logger="vireid.engine.speed"):
        assert resolve_speed(SpeedConfig(amp="bf16"), "cuda").amp_dtype == torch.bfloat16
    assert "no native bfloat16" in caplog.text
