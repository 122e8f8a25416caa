"""Where a training step's time goes: a timer the trainer marks at each phase boundary.

The trainer calls, in every step, :meth:`StepTimer.mark` after each phase
(``data wait`` -> ``to device`` -> ``forward`` -> ``other`` -> ``backward`` -> ``optimizer``),
:meth:`StepTimer.keep` with the step's network output and :meth:`StepTimer.end_step` at
its end; the time since the previous mark goes to the phase named. On CUDA every mark
first waits for the GPU (:func:`torch.cuda.synchronize`), so a phase's time is the work
it queued, not the time it took to queue it (the synchronisation itself slows a step a
little: the profile is a diagnosis, not the training speed). After ``limit`` steps
:meth:`end_step` raises :class:`ProfileStop`, which ends the run without the epoch's
checkpoint or validation. :data:`NULL_TIMER`, the trainer's default, does nothing.

:mod:`vireid.experiments.profile` runs the trainer with a :class:`StepTimer` and reports.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import fields
from typing import Any, Dict, List, Optional

import torch

#: The phases in the order of a step (``other``: the loss values' all-reduce / finiteness
#: check, the logging and, every ``grad_every`` steps, the per-term gradient norms; two marks
#: of a step).
PHASES = ("data wait", "to device", "forward", "backward", "optimizer", "other")


class ProfileStop(Exception):
    """Raised by :meth:`StepTimer.end_step` once the profiled steps are done."""


class StepTimer:
    """Phase times of ``limit`` training steps (see the module docstring)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a profile needs at least 1 step, got {limit}")
        self.limit = int(limit)
        self.device: Optional[torch.device] = None
        self.world_size = 1
        self.backend: Optional[str] = None           # the process group's, when there is one
        self.steps: List[Dict[str, float]] = []
        self.images: List[int] = []
        self.kept: Optional[Dict[str, Any]] = None
        self._current: Dict[str, float] = defaultdict(float)
        self._last = 0.0

    def _sync(self) -> None:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self, device: torch.device) -> None:
        """Before an epoch's first batch: the time origin of its first step."""
        self.device = torch.device(device)
        dist = torch.distributed
        group = dist.is_available() and dist.is_initialized()
        self.world_size = dist.get_world_size() if group else 1
        self.backend = str(dist.get_backend()) if group else None
        self._sync()
        self._current = defaultdict(float)
        self._last = time.perf_counter()

    def mark(self, phase: str) -> None:
        """The time since the previous mark was spent in ``phase``."""
        self._sync()
        now = time.perf_counter()
        self._current[phase] += now - self._last
        self._last = now

    def keep(self, output: Any, labels: torch.Tensor, modality: torch.Tensor, heatmaps: Optional[torch.Tensor],
             joint_weights: Optional[torch.Tensor]) -> None:
        """The step's network output and targets, detached (the last step's are timed per loss term)."""
        detached = {f.name: (None if getattr(output, f.name) is None else getattr(output, f.name).detach())
                    for f in fields(output)}
        self.kept = {"output": type(output)(**detached), "labels": labels, "modality": modality,
                     "heatmaps": heatmaps, "joint_weights": joint_weights}
        self.images.append(int(labels.shape[0]))

    def end_step(self) -> None:
        """Close the step (the rest of its time is ``other``); :class:`ProfileStop` after ``limit``."""
        self.mark("other")
        self.steps.append(dict(self._current))
        self._current = defaultdict(float)
        if len(self.steps) >= self.limit:
            raise ProfileStop(f"{self.limit} step(s) profiled")


class _NullTimer(StepTimer):
    """The trainer's timer when nothing is profiled: every call returns at once."""

    def __init__(self) -> None:
        pass

    def start(self, device: torch.device) -> None:
        pass

    def mark(self, phase: str) -> None:
        pass

    def keep(self, *args: Any) -> None:
        pass

    def end_step(self) -> None:
        pass


NULL_TIMER: StepTimer = _NullTimer()
