"""Activation checkpointing (``speed.activation_checkpointing``) against keeping every activation.

Each mode runs in its own process (a fresh peak): one warm-up training step and ``--steps``
timed ones of the full model under the full loss, as ``bench_model.py`` builds them. Prints
each mode's peak memory (max RSS on a CPU, ``torch.cuda.max_memory_allocated`` on a GPU) and
best step time, then the ratios recomputed / kept, measured in this run.

    python benchmarks/bench_recompute.py                          # ResNet-50, 288x144, batch 64
    python benchmarks/bench_recompute.py --batch 16 --steps 1     # a busy CPU
    python benchmarks/bench_recompute.py --backbone resnet18 --size 128x64 --batch 8
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GIB = 1024 ** 3


def measure(backbone: str, hw: Sequence[int], batch: int, steps: int, device: str, recompute: bool) -> Dict[str, float]:
    """Peak memory (bytes) and best step time (s) of one mode, in this process."""
    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_model import make_batch
    from vireid.engine.loop import resolve_device
    from vireid.losses import compute_losses
    from vireid.model import ModelConfig, PoseVIReIDNet, leading_rgb_count
    from vireid.model.recompute import enable_activation_checkpointing

    dev = resolve_device(device)
    torch.manual_seed(0)
    model = PoseVIReIDNet(ModelConfig(backbone=backbone, input_size=tuple(hw), num_classes=395))
    if recompute:
        enable_activation_checkpointing(model)
    model.to(dev).train()
    images, modality, labels, heat, weights = make_batch(batch, tuple(hw), model.heatmap_size(), dev)
    rgb_count = leading_rgb_count(modality.cpu())
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(images, modality, rgb_count=rgb_count)
        compute_losses(out, labels, modality, heat, weights)["total"].backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    step()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"peak_bytes": float(peak), "step_s": min(times)}


def _child(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"a measuring process failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout


def run(backbone: str, hw: Sequence[int], batch: int, steps: int, device: str) -> Dict[str, Dict[str, float]]:
    """Both modes, each in a fresh process; returns ``{'kept': ..., 'recomputed': ...}``."""
    results = {}
    for name, flag in (("kept", False), ("recomputed", True)):
        args = json.dumps([backbone, list(hw), batch, steps, device, flag])
        code = f"import json, sys; sys.path.insert(0, {str(REPO / 'benchmarks')!r}); import bench_recompute as b; " \
               f"print(json.dumps(b.measure(*json.loads({args!r}))))"
        out = _child(code)
        results[name] = json.loads(out.strip().splitlines()[-1])
    return results


def report(results: Dict[str, Dict[str, float]], what: str) -> str:
    kept, rec = results["kept"], results["recomputed"]
    lines = [f"activation checkpointing, {what}",
             f"  {'mode':<11s} {'peak':>10s} {'step':>9s}"]
    for name, r in results.items():
        lines.append(f"  {name:<11s} {r['peak_bytes'] / GIB:8.2f} GiB {r['step_s']:8.2f} s")
    lines.append(f"  recomputed / kept: peak {rec['peak_bytes'] / kept['peak_bytes']:.2f}x, "
                 f"step time {rec['step_s'] / kept['step_s']:.2f}x")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--size", default="288x144", help="input HxW")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args(argv)
    hw = [int(v) for v in a.size.lower().split("x")]
    results = run(a.backbone, hw, a.batch, a.steps, a.device)
    print(report(results, f"{a.backbone} {hw[0]}x{hw[1]} batch {a.batch}, device {a.device}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
