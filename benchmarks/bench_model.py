"""Speed / size figures of the joint pose-ReID network, measured in this run.

Prints parameter counts per block of Fig. 2, the forward+backward time per image of one
training step under the full loss (eq. 21), and peak memory: the process's max RSS
(``resource.getrusage``) on CPU, ``torch.cuda.max_memory_allocated`` on a GPU.

    python benchmarks/bench_model.py                        # ResNet-50 288x144 batch 64, ResNet-18 128x64
    python benchmarks/bench_model.py --batch 8 --steps 2    # smaller, for a busy CPU
    python benchmarks/bench_model.py --only resnet18 --device cuda
"""
from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vireid.engine.loop import resolve_device  # noqa: E402
from vireid.losses import compute_losses  # noqa: E402
from vireid.model import ModelConfig, PoseVIReIDNet, leading_rgb_count  # noqa: E402
from vireid.pose.joints import NUM_JOINTS  # noqa: E402

logger = logging.getLogger("bench_model")


def make_batch(batch: int, hw: Tuple[int, int], heat_hw: Tuple[int, int], device: torch.device):
    ids = max(batch // 4, 1)  # ids x 2 RGB x 2 IR
    labels = torch.arange(ids).repeat_interleave(2).repeat(2)[:batch]
    modality = torch.arange(2).repeat_interleave(len(labels) // 2)
    if len(modality) < batch:
        modality = torch.cat([modality, torch.zeros(batch - len(modality), dtype=torch.long)])
        labels = torch.cat([labels, torch.zeros(batch - len(labels), dtype=torch.long)])
    images = torch.randn(batch, 3, *hw)
    heat = torch.rand(batch, NUM_JOINTS, *heat_hw)
    weights = torch.ones(batch, NUM_JOINTS)
    return [t.to(device) for t in (images, modality, labels, heat, weights)]


def bench(backbone: str, hw: Tuple[int, int], batch: int, steps: int, device: torch.device) -> Dict[str, float]:
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone, input_size=hw, num_classes=395)
    model = PoseVIReIDNet(cfg).to(device).train()
    counts = model.parameter_counts()
    print(f"\n== {backbone} at {hw[0]}x{hw[1]}, batch {batch}, device {device} ==")
    for name, n in counts.items():
        print(f"  params {name:<24s} {n / 1e6:9.3f} M")
    print(f"  heatmaps {model.heatmap_size()}, ReID maps {cfg.reid_feature_size()}")
    images, modality, labels, heat, weights = make_batch(batch, hw, model.heatmap_size(), device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    rgb_count = leading_rgb_count(modality.cpu())      # as vireid-train: from the batch's host copy

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(images, modality, rgb_count=rgb_count)
        compute_losses(out, labels, modality, heat, weights)["total"].backward()
        opt.step()

    step()  # warm-up (allocations, cudnn autotune)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    times: List[float] = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    best = min(times)
    res = {"step_s": best, "ms_per_image": 1000 * best / batch}
    print(f"  fwd+bwd+SGD step: best of {steps}: {best:.3f} s, {res['ms_per_image']:.2f} ms/image"
          f" (mean {sum(times) / len(times):.3f} s)")
    if device.type == "cuda":
        res["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        print(f"  peak GPU memory allocated: {res['peak_gpu_mib']:.0f} MiB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    res["max_rss_mib"] = rss
    print(f"  process max RSS so far: {rss:.0f} MiB")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64, help="ResNet-50 batch (paper: 64)")
    ap.add_argument("--small-batch", type=int, default=16, help="ResNet-18 demo batch")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--only", choices=["resnet50", "resnet18"], default=None)
    ap.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda or cuda:N")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    # ResNet-18 first: max RSS is monotone, so the small model's figure is not the big one's.
    if args.only in (None, "resnet18"):
        bench("resnet18", (128, 64), args.small_batch, args.steps, device)
    if args.only in (None, "resnet50"):
        bench("resnet50", (288, 144), args.batch, args.steps, device)


if __name__ == "__main__":
    main()
