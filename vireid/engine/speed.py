"""Speed switches (``speed:`` of a training configuration) and what they mean on a device:
mixed precision, channels-last, pinned memory, :func:`torch.compile`."""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Optional, Union

import torch

logger = logging.getLogger(__name__)

#: Values of the on / off switches of :class:`SpeedConfig` (YAML ``on`` / ``off`` read as booleans).
SWITCH_VALUES = ("auto", True, False)
#: Values of ``speed.amp``.
AMP_VALUES = ("auto", "bf16", "bf16-native", "fp16", True, False)


@dataclass
class SpeedConfig:
    """GPU speed switches; ``auto`` means on for CUDA, off for CPU (see :func:`resolve_speed`).

    ``amp``: mixed precision autocast: ``auto`` (CUDA: bfloat16 where the GPU computes it
    natively, compute capability 8.0 and up (A100, H100, RTX 30xx...); float16 with a
    GradScaler elsewhere (V100, T4), where torch would emulate bfloat16, slower than
    float16; CPU: off), ``bf16``, ``bf16-native`` (bfloat16 where the device computes it
    natively: a CUDA GPU of compute capability >= 8.0, a CPU with AVX512-BF16 or AMX, where it about halves a
    ResNet-18 training step; float32 elsewhere, where emulated bfloat16 would be slower than
    float32), ``fp16`` (with a :class:`torch.amp.GradScaler`, whose
    state goes into the checkpoint's ``scaler`` slot), ``false`` (float32) or ``true`` (the
    ``auto`` dtype on any device). Explicit values apply on a CPU too (bfloat16 autocast
    works there; float16 on a CPU is slow). ``channels_last``: NHWC memory format for the
    network and its input images (faster convolutions on tensor cores). ``pin_memory``:
    page-locked DataLoader batches and non-blocking host-to-device copies. ``compile``:
    :func:`torch.compile` of the training forward; ``auto`` means *off* on every device:
    compiling takes minutes per input shape, the eval-mode validation forward is another
    graph, and a CPU compile needs a C++ toolchain, so it only pays on long GPU runs; set
    ``true`` to opt in. ``activation_checkpointing``: recompute the ResNet stages' and the
    Refinement Module's blocks in the backward pass instead of keeping their activations
    (:mod:`vireid.model.recompute`): the same step in about half the memory for about one
    more forward pass of compute; off by default (a GPU holds the paper's batch), on where
    memory is what stops a run (a small GPU, or the paper's batch on a CPU).
    """

    amp: Union[bool, str] = "auto"
    channels_last: Union[bool, str] = "auto"
    pin_memory: Union[bool, str] = "auto"
    compile: Union[bool, str] = "auto"
    activation_checkpointing: bool = False


@dataclass(frozen=True)
class ResolvedSpeed:
    """What :class:`SpeedConfig` means on one device: ``amp_dtype`` is ``None`` for float32."""

    amp_dtype: Optional[torch.dtype]
    channels_last: bool
    pin_memory: bool
    compile: bool
    activation_checkpointing: bool = False

    @property
    def grad_scaler(self) -> bool:
        """float16 autocast needs loss scaling (bfloat16 has float32's range and does not)."""
        return self.amp_dtype == torch.float16

    @property
    def non_blocking(self) -> bool:
        """Host-to-device copies overlap compute only from pinned memory."""
        return self.pin_memory

    def describe(self) -> str:
        amp = {None: "float32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast + GradScaler"}
        on = {True: "on", False: "off"}
        return (f"precision {amp[self.amp_dtype]}, channels_last {on[self.channels_last]}, pin_memory "
                f"{on[self.pin_memory]}, compile {on[self.compile]}, activation checkpointing "
                f"{on[self.activation_checkpointing]}")


def cuda_bf16_native(device: Union[str, torch.device, None] = None) -> bool:
    """True where the CUDA GPU computes bfloat16 in hardware (compute capability >= 8.0).

    :func:`torch.cuda.is_bf16_supported` counts emulation by default (a V100 or T4 says
    yes, then runs bfloat16 slower than float16), so it is asked with
    ``including_emulation=False`` where this torch takes the argument; older torch builds
    get the compute-capability check it stands for.
    """
    if not torch.cuda.is_available():
        return False
    check = torch.cuda.is_bf16_supported
    try:
        takes_flag = "including_emulation" in inspect.signature(check).parameters
    except (TypeError, ValueError):          # a builtin without a signature: use the capability
        takes_flag = False
    if takes_flag:
        return bool(check(including_emulation=False))
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def _cpu_bf16_native() -> bool:
    """True where this CPU has bfloat16 instructions (AVX512-BF16 or AMX tiles)."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return any(bool(check()) for check in checks if check is not None)
    except RuntimeError:  # a build without the CPU capability queries: assume emulation
        return False


def resolve_speed(speed: SpeedConfig, device: Union[str, torch.device]) -> ResolvedSpeed:
    """The switches of ``speed`` on ``device``: ``auto`` -> on for CUDA, off otherwise
    (``compile: auto`` -> off everywhere, see :class:`SpeedConfig`)."""
    cuda = torch.device(device).type == "cuda"

    def switch(value: Union[bool, str], auto: bool) -> bool:
        return auto if value == "auto" else bool(value)

    dev = torch.device(device)
    native = cuda_bf16_native(dev if dev.index is not None else None) if cuda else _cpu_bf16_native()
    auto_dtype = torch.bfloat16 if (not cuda or native) else torch.float16
    if speed.amp == "auto":
        dtype = auto_dtype if cuda else None
    elif speed.amp is True:
        dtype = auto_dtype
    elif speed.amp is False:
        dtype = None
    elif speed.amp == "bf16-native":
        dtype = torch.bfloat16 if native else None
    else:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[str(speed.amp)]
    if cuda and dtype == torch.bfloat16 and not native:
        logger.warning("speed.amp=%s: this GPU has no native bfloat16 (compute capability < 8.0), torch emulates "
                       "it, slower than float16: speed.amp auto (fp16 + GradScaler here) is faster", speed.amp)
    return ResolvedSpeed(amp_dtype=dtype, channels_last=switch(speed.channels_last, cuda),
                         pin_memory=switch(speed.pin_memory, cuda), compile=switch(speed.compile, False),
                         activation_checkpointing=speed.activation_checkpointing)
