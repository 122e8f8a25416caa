"""The skeleton of a training run, shared by ``vireid-train`` (:mod:`vireid.engine.trainer`) and
``vireid-prep train-estimator`` (:mod:`pipeline.train_estimator`).

A run takes four steps, in this order; each trainer reads top to bottom along them:

1. build the data (the trainer's own: data set, sampler or shuffling, validation split);
2. build the model, optimizer and scheduler on the device :func:`resolve_device` gives, and on
   a resume restore them from the state saved by the last epoch, read with
   :func:`read_with_fallback` (the previous state when the last one is damaged) and refused
   when a setting changed that may not (:func:`changed_keys` names the keys);
3. every batch: :meth:`EpochLoop.train_step` returns the named losses; the loop turns them
   into floats (:meth:`EpochLoop.loss_values`), stops on a NaN / inf before the update
   (:func:`first_non_finite`, :meth:`EpochLoop.non_finite`), then updates
   (:meth:`EpochLoop.update`) and sums the values for the epoch means (:class:`EpochStats`);
4. end of every epoch (:meth:`EpochLoop.end_of_epoch`): validate and checkpoint -- written
   atomically and sealed, the previous one kept (``keep_previous`` of
   :func:`vireid.sealing.torch_save`), which is what step 2 falls back to.

Exact resume rests on step 4 saving everything an epoch boundary needs (weights, optimizer,
scheduler, RNG or the seeds the data order derives from) and step 2 restoring it before the
first batch; the loop itself keeps no state across epochs.

torch is imported where it is used, so importing this module (``vireid-prep --help``) stays quick.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Callable, Collection, Dict, Iterable, List, Mapping, Optional, Tuple, Type,
                    TypeVar, Union)

from vireid.engine.errors import NonFiniteLossError
from vireid.io import previous_path

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

T = TypeVar("T")


class DeviceError(ValueError):
    """A device name that does not parse or that this host cannot run (one line naming it)."""


# ----------------------------------------------------------------------------- step 2: device and resume
def resolve_device(name: str) -> "torch.device":
    """``auto``: the GPU when CUDA is available, else the CPU; otherwise the device ``name``
    (``cpu``, ``cuda``, ``cuda:N``, ...), refused with :class:`DeviceError` when it does not
    parse or this host cannot run it. A CUDA device is checked without creating a context on it."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"device {name!r}: {exc}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} asked for but CUDA is not available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif device.type != "cpu":
        try:
            torch.empty(1, device=device)
        except (RuntimeError, AssertionError) as exc:
            raise DeviceError(f"device {name!r}: {exc}") from None
    return device


def flatten_config(d: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{'a': {'b': 1}}`` -> ``{'a.b': 1}``; tuples become lists (as a saved config holds them)."""
    out: Dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(flatten_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def changed_keys(saved: Mapping[str, Any], now: Mapping[str, Any], may_change: Collection[str] = ()) -> List[str]:
    """The dotted keys (sorted) whose value differs between a saved configuration and this run's,
    or that only one of them has, leaving out ``may_change``: what makes a resume not exact."""
    a, b = flatten_config(saved), flatten_config(now)
    return [k for k in sorted(set(a) | set(b)) if k not in may_change and a.get(k) != b.get(k)]


def read_with_fallback(path: Path, read: Callable[[Path], T], errors: Union[Type[Exception], Tuple[type, ...]],
                       what: str = "checkpoint") -> Tuple[T, Path, Optional[Exception]]:
    """``read(path)``; when it raises one of ``errors`` (missing, truncated, damaged, not a
    state of this kind) and the previous state kept beside it exists (``<stem>.prev<suffix>``,
    :func:`vireid.io.previous_path`), ``read`` of that one instead.

    Returns ``(state, the path read, the error of path or None)``: the caller says that it fell
    back. When both fail, the first error's type is raised with both messages (``'...; the
    previous <what> is no better: ...'``); without a previous state, the first error as it is.
    """
    try:
        return read(path), path, None
    except errors as exc:
        prev = previous_path(path)
        if not prev.is_file():
            raise
        try:
            state = read(prev)
        except errors as exc2:
            raise type(exc)(f"{exc}; the previous {what} is no better: {exc2}") from None
        return state, prev, exc


# ----------------------------------------------------------------------------- step 3: the loss guard
def first_non_finite(values: Mapping[str, float]) -> Optional[Tuple[str, float]]:
    """The first ``(name, value)`` of ``values`` that is NaN or inf, or None."""
    for name, v in values.items():
        if not math.isfinite(v):
            return name, v
    return None


@dataclass
class EpochStats:
    """The sums of an epoch's loss values, for their means."""

    sums: Dict[str, float] = field(default_factory=dict)
    steps: int = 0

    def add(self, values: Mapping[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.steps += 1

    def means(self) -> Dict[str, float]:
        """Each value's mean over the steps so far (nothing before the first step)."""
        return {k: v / max(self.steps, 1) for k, v in self.sums.items()}


def progress_bar(iterable: Iterable[T], total: int, desc: str, enabled: bool, unit: str = "step",
             leave: bool = True) -> Iterable[T]:
    """``iterable`` with a progress bar when ``enabled`` (tqdm), else as it is."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=leave)


# ----------------------------------------------------------------------------- steps 3 and 4: the epochs
class EpochLoop:
    """The epochs of a run. A trainer subclasses it and fills in its steps:

    * :meth:`batches` -- the epoch's batches (set the sampler's or data set's epoch here);
    * :meth:`train_step` -- one batch forward: ``{name: loss}``, :attr:`objective` among them;
    * :meth:`end_of_epoch` -- validate and checkpoint;

    and may change :meth:`loss_values` (e.g. averaged over processes), :meth:`non_finite` (its
    error message), :meth:`update` (e.g. a gradient scaler) and :meth:`after_step` (logging).
    A subclass sets :attr:`optimizer` (e.g. as a dataclass field).
    """

    #: the named loss that is backpropagated
    objective: str = "total"
    optimizer: "torch.optim.Optimizer"

    def run(self, start_epoch: int, epochs: int) -> None:
        """Epochs ``start_epoch`` .. ``epochs - 1`` (0-based; none when resuming a finished run)."""
        for epoch in range(start_epoch, epochs):
            stats = EpochStats()
            batches = self.batches(epoch)
            try:
                for it, batch in enumerate(batches, 1):
                    losses = self.train_step(batch)
                    values = self.loss_values(losses)
                    bad = first_non_finite(values)
                    if bad is not None:
                        self.non_finite(epoch, it, values, *bad)
                        raise NonFiniteLossError(f"loss {bad[0]!r} is {bad[1]} at epoch {epoch + 1}, step {it}")
                    self.update(losses)
                    stats.add(values)
                    self.after_step(epoch, it, values, stats)
            finally:
                close = getattr(batches, "close", None)          # a progress bar, a generator
                if close is not None:
                    close()
            self.end_of_epoch(epoch, stats)

    # ---- what a trainer supplies
    def batches(self, epoch: int) -> Iterable[Any]:
        raise NotImplementedError

    def train_step(self, batch: Any) -> Mapping[str, Any]:
        """The named losses of one batch: tensors (``objective`` is backpropagated), or floats
        for values that are only reported."""
        raise NotImplementedError

    def end_of_epoch(self, epoch: int, stats: EpochStats) -> None:
        """Validate and checkpoint after epoch ``epoch`` (0-based); ``stats`` holds its loss sums."""

    # ---- what a trainer may change
    def loss_values(self, losses: Mapping[str, Any]) -> Dict[str, float]:
        """The step's losses as floats (what is checked, summed and logged)."""
        return {k: float(v.detach()) if hasattr(v, "detach") else float(v) for k, v in losses.items()}

    def non_finite(self, epoch: int, it: int, values: Mapping[str, float], name: str, value: float) -> None:
        """Raise the trainer's error for loss ``name`` being ``value`` (NaN / inf) at step ``it``
        of epoch ``epoch`` (0-based), before the update; the default says just that."""
        raise NonFiniteLossError(f"loss {name!r} is {value} at epoch {epoch + 1}, step {it} of the epoch: "
                                 "training stopped before the update")

    def update(self, losses: Mapping[str, Any]) -> None:
        """Backpropagate ``losses[objective]`` and take the optimizer step."""
        self.optimizer.zero_grad(set_to_none=True)
        losses[self.objective].backward()
        self.optimizer.step()

    def after_step(self, epoch: int, it: int, values: Mapping[str, float], stats: EpochStats) -> None:
        """After the update (logging, progress)."""
