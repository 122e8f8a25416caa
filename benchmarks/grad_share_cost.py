"""What the gradient-share measurement (``grad_every``, :mod:`vireid.engine.grad_share`) costs
per measured step, three ways, on the demo's model (ResNet-18 at 128x64, narrow heads, 32 images):

* ``per term and block``: one ``autograd.grad`` per term and per shared block (before);
* ``per term, union``: one ``autograd.grad`` per term over the union of both blocks'
  parameters, split per block afterwards (what the trainer does);
* ``batched``: one ``autograd.grad`` of the four terms with ``is_grads_batched`` (vmap over
  the backward pass).

Each is timed against the training step's own backward (``backward``) and checked against
the union's norms. Run: ``python benchmarks/grad_share_cost.py [--repeat 5] [--threads 2]``.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List

import torch

from vireid.engine.grad_share import gradient_norms, shared_blocks, weighted_terms
from vireid.losses import LossConfig, compute_losses
from vireid.losses.total import TERMS
from vireid.model import ModelConfig, PoseVIReIDNet
from vireid.pose.joints import NUM_JOINTS

HW = (128, 64)


def _step(model, loss_cfg, batch):
    images, modality, labels, targets = batch
    out = model(images, modality)
    losses = compute_losses(out, labels, modality, targets, torch.ones(len(labels), NUM_JOINTS), loss_cfg)
    return weighted_terms(losses, loss_cfg), losses["total"]


def per_term_and_block(terms, blocks) -> Dict[str, float]:
    out = {}
    for block, params in blocks.items():
        for name, term in terms.items():
            grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            out[f"{block}/{name}"] = sum(float(g.pow(2).sum()) for g in grads if g is not None) ** 0.5
    return out


def batched(terms, blocks) -> Dict[str, float]:
    union: List[torch.nn.Parameter] = [p for ps in blocks.values() for p in ps]
    names = list(terms)
    stacked = torch.stack([terms[n] for n in names])
    grads = torch.autograd.grad(stacked, union, torch.eye(len(names)), retain_graph=True, allow_unused=True,
                                is_grads_batched=True)
    out, i = {}, 0
    for block, params in blocks.items():
        sq = sum(g.pow(2).flatten(1).sum(1) for g in grads[i:i + len(params)] if g is not None)
        i += len(params)
        for k, n in enumerate(names):
            out[f"{block}/{n}"] = float(sq[k]) ** 0.5
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(backbone="resnet18", input_size=HW, num_classes=50, stripe_dim=128, teacher_dim=256,
                      pose_channels=64, deconv_channels=32, refine_channels=32, heatmap_channels=16)
    model = PoseVIReIDNet(cfg).train()
    loss_cfg = LossConfig()
    blocks = shared_blocks(model)
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(8).repeat_interleave(2).repeat(2)
    batch = (torch.randn(32, 3, *HW, generator=g), torch.tensor([0] * 16 + [1] * 16), labels,
             torch.rand(32, NUM_JOINTS, HW[0] // 4, HW[1] // 4, generator=g))
    ways: Dict[str, Callable] = {
        "per term and block": per_term_and_block,
        "per term, union": lambda t, b: gradient_norms(t, b),
        "batched": batched,
    }
    times: Dict[str, List[float]] = {k: [] for k in ["backward", *ways]}
    results: Dict[str, Dict[str, float]] = {}
    for _ in range(args.repeat):
        terms, total = _step(model, loss_cfg, batch)
        for name, way in ways.items():
            t0 = time.perf_counter()
            try:
                results[name] = way(terms, blocks)
            except RuntimeError as exc:           # vmap may not cover every backward kernel
                results[name] = {"error": str(exc).splitlines()[0]}
            times[name].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        total.backward()
        times["backward"].append(time.perf_counter() - t0)
        model.zero_grad(set_to_none=True)
    ref = results["per term, union"]
    base = min(times["backward"])
    print(f"{'way':<22} {'s (best of %d)' % args.repeat:>14} {'x backward':>11}  max rel. diff vs union")
    for name, ts in times.items():
        res = results.get(name, ref)
        if "error" in res:
            diff = res["error"][:60]
        else:
            diff = f"{max(abs(res[k] - ref[k]) / max(ref[k], 1e-12) for k in res):.1e}"
        print(f"{name:<22} {min(ts):>14.3f} {min(ts) / base:>11.2f}  {diff}")
    print(f"terms measured: {[t for t in TERMS if t in terms]}, blocks: {list(blocks)}")


if __name__ == "__main__":
    main()
