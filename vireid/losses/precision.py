"""Every loss term in float32, whatever autocast the forward pass ran under.

Under bfloat16 autocast (``speed.amp``: the release presets on CUDA, the demo on a CPU) a
matrix product inside a loss runs in bfloat16, whose 8-bit mantissa has a step of 2-4 near
512. The hetero-center distances ``||a||^2 + ||b||^2 - 2 a.b`` (eq. 19) are formed from
512-d stripe embeddings whose squared norms are about 512: an error of the size of the
margin rho = 0.3 itself. Cross-entropy, the KL of eq. 15 and the squared heatmap error
(eqs. 15-17) sum many small terms and lose digits the same way.

:func:`float32_loss` wraps a loss function's entry: its floating-point tensor arguments of
lower precision (float16, bfloat16) are cast to float32 and the function runs with
autocast off on their devices, so every operation inside is float32. float64 arguments are
left as they are (tests and golden values). The casts are differentiable: gradients reach
the half-precision activations unchanged in meaning.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterable, Set, TypeVar

import torch
from torch import Tensor

F = TypeVar("F", bound=Callable[..., Any])

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def to_float32(value: Any) -> Any:
    """``value`` as float32 when it is a float16 / bfloat16 tensor (lists and tuples of them
    element-wise); anything else unchanged."""
    if isinstance(value, Tensor):
        return value.float() if value.dtype in _LOW_PRECISION else value
    if isinstance(value, (list, tuple)):
        return type(value)(to_float32(v) for v in value)
    return value


def _device_types(values: Iterable[Any], into: Set[str]) -> Set[str]:
    for v in values:
        if isinstance(v, Tensor):
            into.add(v.device.type)
        elif isinstance(v, (list, tuple)):
            _device_types(v, into)
    return into


@contextlib.contextmanager
def autocast_off(*values: Any) -> Any:
    """Autocast disabled on the CPU and on the devices of the tensors in ``values``."""
    with contextlib.ExitStack() as stack:
        for device_type in sorted(_device_types(values, {"cpu"})):
            if torch.amp.is_autocast_available(device_type):
                stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
        yield


def float32_loss(fn: F) -> F:
    """Decorate a loss function (or a loss module's ``forward``) to compute in float32 (module docstring)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        args = tuple(to_float32(a) for a in args)
        kwargs = {k: to_float32(v) for k, v in kwargs.items()}
        with autocast_off(args, tuple(kwargs.values())):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
