"""``vireid-train --profile N``: where a training step's time goes on this host.

:func:`profile_training` runs the trainer for ``N`` steps of the configuration into a
temporary folder (nothing is kept) with a :class:`~vireid.engine.steptimer.StepTimer`, and
returns a :class:`ProfileReport`: per phase (data wait, to device, forward = network +
losses, backward, optimizer step, other = loss bookkeeping and logging) the mean time of a
step over the steps after the first ``warmup`` ones (worker start-up, cuDNN autotuning and
``torch.compile`` happen there), the training images/s with and without the data wait,
the peak memory, and the time of each loss term alone: its forward and its backward as far
as the network's outputs (the network's own backward is shared by all terms and is not
separable), the best of :data:`LOSS_REPEATS` timings on the last step's outputs under the run's
autocast.

Every figure is measured in the run itself. On CUDA each phase boundary waits for the GPU
(:func:`torch.cuda.synchronize`), which makes the phases honest and the step a little slower
than in an unprofiled run.
"""
from __future__ import annotations

import dataclasses
import math
import resource
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from vireid.engine.config import TrainConfig
from vireid.engine.speed import resolve_speed
from vireid.engine.steptimer import PHASES, ProfileStop, StepTimer
from vireid.io import PathLike
from vireid.losses import loss_terms
from vireid.losses.total import hctri_loss, term_weights

#: Repeats of each loss term's timing (on the kept outputs of the last step).
LOSS_REPEATS = 5
#: Above this share of a step spent waiting for data the report suggests more workers.
STALL_HINT = 0.10


@dataclass
class ProfileReport:
    """What :func:`profile_training` measured (seconds, images, MiB)."""

    device: str
    speed: str
    world_size: int
    workers: int
    backend: Optional[str]                      # the process group's (DDP), None in a plain process
    warmup: int
    steps: List[Dict[str, float]]               # every step's seconds per phase, warm-up included
    images: List[int]                           # this process's images per step
    loss_seconds: Dict[str, float] = field(default_factory=dict)   # per term: forward + backward to outputs
    loss_values: Dict[str, float] = field(default_factory=dict)    # the last step's terms (unweighted)
    peak_memory_mib: float = float("nan")
    memory_kind: str = ""

    @property
    def measured(self) -> List[Dict[str, float]]:
        return self.steps[self.warmup:]

    def phase_means(self) -> Dict[str, float]:
        """Mean seconds per measured step of each phase (every phase of :data:`PHASES`)."""
        rows = self.measured
        return {p: sum(r.get(p, 0.0) for r in rows) / max(len(rows), 1) for p in PHASES}

    @property
    def step_seconds(self) -> float:
        return sum(self.phase_means().values())

    @property
    def data_wait_share(self) -> float:
        return self.phase_means()["data wait"] / self.step_seconds

    @property
    def warmup_seconds(self) -> float:
        return sum(sum(r.values()) for r in self.steps[:self.warmup])

    @property
    def images_per_step(self) -> float:
        """Images per step over all processes (the global batch)."""
        imgs = self.images[self.warmup:]
        return self.world_size * sum(imgs) / max(len(imgs), 1)

    @property
    def images_per_s(self) -> float:
        """Training speed over all processes, data wait included."""
        return self.images_per_step / self.step_seconds

    @property
    def compute_images_per_s(self) -> float:
        """What the step would reach if data were always ready (its time less the data wait)."""
        return self.images_per_step / (self.step_seconds - self.phase_means()["data wait"])

    @property
    def losses_finite(self) -> bool:
        return all(math.isfinite(v) for v in self.loss_values.values())

    def to_dict(self) -> Dict[str, Any]:
        return {"device": self.device, "speed": self.speed, "world_size": self.world_size, "backend": self.backend,
                "workers": self.workers,
                "warmup_steps": self.warmup, "measured_steps": len(self.measured),
                "images_per_step": self.images_per_step, "step_s": self.step_seconds,
                "phase_s": self.phase_means(), "data_wait_share": self.data_wait_share,
                "images_per_s": self.images_per_s, "compute_images_per_s": self.compute_images_per_s,
                "warmup_s": self.warmup_seconds, "peak_memory_mib": self.peak_memory_mib,
                "memory_kind": self.memory_kind, "loss_s": dict(self.loss_seconds),
                "loss_values": dict(self.loss_values), "losses_finite": self.losses_finite}

    def format(self) -> str:
        """The report as text: a phase table, speed and memory, a loss-term table, a hint."""
        means, step = self.phase_means(), self.step_seconds
        ddp = f", DDP over {self.backend}" if self.backend else ""
        lines = [f"profile: {len(self.measured)} step(s) of {self.images_per_step:.0f} images on {self.device} "
                 f"({self.world_size} process(es){ddp}, {self.workers} data worker(s) each; {self.speed}); the "
                 f"first {self.warmup} step(s) left out: {self.warmup_seconds:.2f} s (worker start-up; on a GPU "
                 "also cuDNN autotuning, compiling)",
                 "| phase | ms per step | share of the step |", "|:---|---:|---:|"]
        names = {"forward": "forward (network + losses)", "optimizer": "optimizer step",
                 "other": "other (loss values, checks, logging, grad_every norms)"}
        for p in PHASES:
            lines.append(f"| {names.get(p, p)} | {1e3 * means[p]:.2f} | {100 * means[p] / step:.1f}% |")
        lines.append(f"| step | {1e3 * step:.2f} | 100% |")
        lines.append(f"training {self.images_per_s:.1f} images/s; without the data wait "
                     f"{self.compute_images_per_s:.1f} images/s; peak memory {self.peak_memory_mib:.0f} MiB "
                     f"({self.memory_kind})")
        if self.loss_seconds:
            lines += [f"loss terms alone on the last step's outputs (best of {LOSS_REPEATS}; forward + backward as far "
                      "as the network outputs, whose own backward all terms share):",
                      "| loss | ms | share of the step | value |", "|:---|---:|---:|---:|"]
            for name, sec in self.loss_seconds.items():
                lines.append(f"| {name} | {1e3 * sec:.3f} | {100 * sec / step:.1f}% | "
                             f"{self.loss_values.get(name, float('nan')):.4g} |")
        if self.data_wait_share > STALL_HINT:
            lines.append(f"{100 * self.data_wait_share:.0f}% of a step waits for data: raise data.workers (now "
                         f"{self.workers}) or use a raw cache on a local disk")
        else:
            lines.append(f"data keeps up: {100 * self.data_wait_share:.1f}% of a step waits for it")
        return "\n".join(lines)


def _peak_memory(device: torch.device) -> tuple:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20, "cuda max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak RSS of the process"


def time_loss_terms(kept: Dict[str, Any], config: TrainConfig, device: torch.device,
                    repeats: int = LOSS_REPEATS) -> tuple:
    """(seconds, value) per loss term: each term alone, forward + backward to the network outputs,
    on detached copies of ``kept`` (:meth:`StepTimer.keep`), under the run's autocast; the best of
    ``repeats`` timings after a warm-up call (a shared machine's noise only adds time)."""
    speed = resolve_speed(config.speed, device)
    out = kept["output"]
    seconds: Dict[str, float] = {}
    values: Dict[str, float] = {}
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    loss_cfg = config.loss_config()
    hctri = hctri_loss(loss_cfg)                                       # built once, as in training
    names = list(loss_terms(out, kept["labels"], kept["modality"], kept["heatmaps"], kept["joint_weights"],
                            loss_cfg, hctri=hctri))
    for name in names:
        best = float("inf")
        for i in range(repeats + 1):                                   # the first call is a warm-up
            leaves = {f.name: (None if getattr(out, f.name) is None else
                               getattr(out, f.name).detach().clone().requires_grad_(True))
                      for f in dataclasses.fields(out)}
            fresh = type(out)(**leaves)
            sync()
            t0 = time.perf_counter()
            with torch.autocast(device.type, dtype=speed.amp_dtype or torch.bfloat16,
                                enabled=speed.amp_dtype is not None):
                _, compute = loss_terms(fresh, kept["labels"], kept["modality"], kept["heatmaps"],
                                        kept["joint_weights"], loss_cfg, hctri=hctri)[name]
                value = compute()
            value.float().backward()
            sync()
            if i > 0:
                best = min(best, time.perf_counter() - t0)
        seconds[name] = best
        values[name] = float(value.detach().float())
    return seconds, values


def profile_training(config: TrainConfig, cache_dir: PathLike, steps: int, warmup: int = 1,
                     trial: Optional[int] = None) -> ProfileReport:
    """Train ``warmup + steps`` steps of ``config`` on ``cache_dir`` in a temporary folder and report
    where the time went (see the module docstring). Raises what :func:`vireid.engine.trainer.train`
    raises (a user's error, a non-finite loss)."""
    from vireid.engine.trainer import train

    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got {steps} and {warmup}")
    total = warmup + steps
    cfg = dataclasses.replace(config, epochs=1, progress=False, tensorboard=False,
                              data=dataclasses.replace(config.data, batches_per_epoch=total))
    timer = StepTimer(total)
    if torch.cuda.is_available() and torch.cuda.is_initialized():   # a fresh process starts at zero
        torch.cuda.reset_peak_memory_stats(torch.cuda.current_device())
    with tempfile.TemporaryDirectory(prefix="vireid-profile-") as tmp:
        try:
            train(cfg, cache_dir, Path(tmp) / "run", trial=trial, timer=timer)
        except ProfileStop:
            pass
    if len(timer.steps) < total or timer.device is None or timer.kept is None:
        raise RuntimeError(f"the run ended after {len(timer.steps)} of {total} steps")
    device = timer.device
    peak, kind = _peak_memory(device)
    loss_s, loss_v = time_loss_terms(timer.kept, cfg, device)
    weight = term_weights(cfg.loss_config())
    loss_v = {**loss_v, "total": sum(weight[n] * v for n, v in loss_v.items())}      # eq. 21, the terms' order
    return ProfileReport(device=str(device), speed=resolve_speed(cfg.speed, device).describe(),
                         world_size=timer.world_size, backend=timer.backend, workers=cfg.data.workers,
                         warmup=warmup, steps=timer.steps, images=timer.images, loss_seconds=loss_s,
                         loss_values=loss_v, peak_memory_mib=peak, memory_kind=kind)
