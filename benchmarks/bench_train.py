"""Training speed on the device present: data pipeline images/s against model images/s.

Builds a small synthetic SYSU-MM01 heatmap cache in a temporary folder, then measures

* **data**: images/s of the DataLoader over the cache alone (CrossModalitySampler batches,
  the training transform, ``--workers`` workers);
* **model**: images/s of forward + backward + SGD step on synthetic tensors on the device
  (with the resolved speed switches: amp, channels_last);
* peak memory: ``torch.cuda.max_memory_allocated`` on CUDA, peak RSS on a CPU.

It prints ``data / model``: above 1 the loader keeps up; below 1 training waits for data
(add workers). Both are measured in the same run, so the ratio is the target.

    python benchmarks/bench_train.py [--backbone resnet18] [--size 128x64] [--ids 8] [--steps 4] [--workers 2]
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Tuple

import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator  # noqa: E402
from pipeline.heatmaps import HeatmapJob  # noqa: E402
from pipeline.synth import synthesize  # noqa: E402
from vireid.inputs.dataset import CacheDataset, make_label_map, training_indices  # noqa: E402
from vireid.data.manifest import Manifest  # noqa: E402
from vireid.inputs.sampler import CrossModalitySampler, SamplerConfig  # noqa: E402
from vireid.data.scan import scan  # noqa: E402
from vireid.cache.reader import CacheConfig, HeatmapCache  # noqa: E402
from vireid.inputs.transforms import TrainTransform, normalise_batch, shift_heatmaps  # noqa: E402
from vireid.engine.config import TrainConfig, load_config  # noqa: E402
from vireid.engine.speed import resolve_speed  # noqa: E402
from vireid.engine.train_data import heatmap_mode  # noqa: E402
from vireid.engine.optim import build_optimizer  # noqa: E402
from vireid.losses import compute_losses  # noqa: E402
from vireid.model import PoseVIReIDNet, leading_rgb_count  # noqa: E402


def make_sysu_cache(tmp: Path, ids: int, input_size: Tuple[int, int], images_per_camera: int = 2,
                    image_size: Optional[Tuple[int, int]] = None, jobs: int = 2) -> Tuple[Path, Path]:
    """A synthetic SYSU-MM01 tree (``vireid-prep synth``) and its heatmap cache made with the
    keypoints estimator (no weights needed) under ``tmp``: ``(tree, cache)``."""
    synthesize("sysu", tmp / "SYSU", ids=ids, seed=0, images_per_camera=images_per_camera, image_size=image_size)
    manifest = scan("sysu", tmp / "SYSU")
    HeatmapJob(manifest, tmp / "SYSU", tmp / "cache", KeypointFileEstimator(tmp / "SYSU" / SIDE_FILE),
               CacheConfig(input_size=tuple(input_size), stride=4, sigma=3.0, shard_size=64), jobs=jobs).run()
    return tmp / "SYSU", tmp / "cache"


def loader_rate(cache_dir: Path, cfg: TrainConfig, workers: int, batches: int, device: torch.device,
                warmup_batches: int = 1) -> float:
    """Images/s of the training DataLoader alone over ``cache_dir`` (CrossModalitySampler batches of
    ``cfg``, the training transform, ``workers`` workers), each batch copied to ``device`` and
    normalised there as ``vireid-train`` does; timed from the arrival of batch ``warmup_batches``
    (the workers' start-up left out) to the last of ``batches``."""
    if batches <= warmup_batches:
        raise ValueError(f"need more batches ({batches}) than warm-up batches ({warmup_batches})")
    speed = resolve_speed(cfg.speed, device)
    cache = HeatmapCache(cache_dir)
    manifest = Manifest.load(cache_dir / "manifest.json")
    idx, _ = training_indices(cache, manifest, ["train", "val"])
    labels = make_label_map(cache.metadata()["pid"][idx].tolist())
    tcfg = cfg.data.transform_config()  # as vireid-train: uint8 out, the device normalises (and shifts the maps)
    maps = heatmap_mode(cfg.model.use_pose_loss, device)
    ds = CacheDataset(cache, idx, TrainTransform(tcfg, device_normalise=True, heatmaps=maps), label_map=labels)
    sampler = CrossModalitySampler(ds.pids, ds.modalities,
                                   SamplerConfig(cfg.data.num_ids, cfg.data.num_per_modality, batches), keyed=True)
    pin = speed.pin_memory and device.type == "cuda"
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=workers, pin_memory=pin)
    t0, n = time.perf_counter(), 0
    for i, batch in enumerate(loader):
        images = batch["image"].to(device, non_blocking=pin)
        normalise_batch(images, batch["erase"], tcfg)
        if "heatmap_shift" in batch:
            shift_heatmaps(batch["heatmaps"].to(device, non_blocking=pin), batch["heatmap_shift"], tcfg)
        if i + 1 == warmup_batches:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
        elif i + 1 > warmup_batches:
            n += images.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--size", default="128x64", help="input HxW")
    ap.add_argument("--ids", type=int, default=8, help="synthetic identities in the cache")
    ap.add_argument("--num-ids", type=int, default=4, help="D identities per batch (K=4)")
    ap.add_argument("--steps", type=int, default=4, help="timed steps (and loader batches, after one warm-up batch)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    cfg = load_config(None, [f"model.backbone={args.backbone}", f"data.input_size=[{h}, {w}]",
                             "model.pretrained=null", f"data.num_ids={args.num_ids}", "data.num_per_modality=4"])
    speed = resolve_speed(cfg.speed, device)
    with tempfile.TemporaryDirectory() as tmp:
        _, cache_dir = make_sysu_cache(Path(tmp), args.ids, (h, w))
        data_rate = loader_rate(cache_dir, cfg, args.workers, args.steps + 1, device)
        cache = HeatmapCache(cache_dir)
        idx, _ = training_indices(cache, Manifest.load(cache_dir / "manifest.json"), ["train", "val"])
        labels = make_label_map(cache.metadata()["pid"][idx].tolist())

    torch.manual_seed(0)
    b = 8 * args.num_ids
    model = PoseVIReIDNet(cfg.model_config(num_classes=len(labels))).to(device).train()
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = build_optimizer(model, cfg.optim)
    hm = cfg.model_config(2).heatmap_size()
    images = torch.randn(b, 3, h, w, device=device)
    mods = torch.arange(b, device=device) // (b // 2)
    rgb_count = leading_rgb_count(mods.cpu())                    # as vireid-train: from the batch's host copy
    lab = (torch.arange(b, device=device) // 4) % len(labels)
    heat = torch.rand(b, 16, *hm, device=device)
    jw = torch.ones(b, 16, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        with torch.autocast(device.type, dtype=speed.amp_dtype or torch.bfloat16, enabled=speed.amp_dtype is not None):
            losses = compute_losses(model(images, mods, rgb_count=rgb_count), lab, mods, heat, jw, cfg.loss_config())
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()

    step()                                                        # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = f"{torch.cuda.max_memory_allocated(device) / 2 ** 20:.0f} MiB (cuda max_memory_allocated)"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (peak RSS)"
    model_rate = args.steps * b / (time.perf_counter() - t0)
    print(f"device {device}: {speed.describe()}; {args.backbone} at {h}x{w}, batch {b}")
    print(f"data pipeline: {data_rate:.1f} images/s ({args.workers} workers)")
    print(f"model (forward+backward+step): {model_rate:.1f} images/s; peak memory {peak}")
    verdict = "loading keeps up" if data_rate >= model_rate else "training waits for data: add workers"
    print(f"ratio data / model = {data_rate / model_rate:.2f} ({verdict})")


if __name__ == "__main__":
    main()
