"""Throughput of `vireid-prep heatmaps` against the estimator alone, cache size, read speed.

Everything is measured in the same run on the same synthetic SYSU-MM01 tree:

1. pure batched forward of the estimator (GCCPM with random weights, the public
   checkpoint's 5 refinement stages) on pre-decoded, pre-fitted tensors: the ceiling;
2. the whole job end to end (decoding, fitting, inference, rendering, encoding, HDF5
   writing) with 2 decoding threads: the ratio 2/1 is the target (>= 0.85);
3. bytes per image on disk for crops stored as JPEG and as raw pixels, and read
   throughput of each cache (image + heatmaps, one process) against decoding the
   original JPEG files and resizing them (what training would do without a cache).

    python benchmarks/bench_heatmaps.py [--ids 24] [--stages 5] [--batch 16] [--device auto]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional

import cv2
import torch

from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator
from pipeline.estimators.lip import LipEstimator
from pipeline.heatmaps import HeatmapJob
from pipeline.synth import synthesize
from vireid.data.manifest import Manifest
from vireid.data.scan import scan
from vireid.cache.reader import CacheConfig, HeatmapCache
from vireid.engine.loop import resolve_device
from vireid.pose.codec import prepare_input
from vireid.pose.gccpm import GCCPM


def estimator_rates(manifest: Manifest, root: Path, out: Path, weights: Path, batch: int, device: str,
                    jobs: int, size: Optional[int] = None) -> Dict[str, Any]:
    """Images/s of the GCCPM estimator (``weights``) alone, batched forward on pre-decoded,
    pre-fitted tensors (one warm-up batch), and of ``vireid-prep heatmaps`` end to end into
    ``out`` (decoding with ``jobs`` threads, fitting, inference, rendering, writing), with
    ``batch`` images per forward on ``device``; ``ratio`` = end to end / forward."""
    est = LipEstimator(weights, device=device, size=size)
    est.batch_size = batch
    n = len(manifest.records)
    images = [cv2.imread(str(root / r.path)) for r in manifest.records]
    tensors = [torch.from_numpy(prepare_input(im, est.size)[0])[None] for im in images]
    sync = (lambda: torch.cuda.synchronize(est.device)) if est.device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        est.model(torch.cat(tensors[:batch]).to(device))                  # warm-up
        sync()
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            est.model(torch.cat(tensors[i:i + batch]).to(device))
        sync()
        forward_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = HeatmapJob(manifest, root, out, est, CacheConfig(), jobs=jobs).run()
    job_s = time.perf_counter() - t0
    if not res.complete:
        raise RuntimeError(f"{out}: the heatmap job did not complete")
    forward_ips, job_ips = n / forward_s, n / job_s
    return {"images": n, "forward_ips": forward_ips, "job_ips": job_ips, "ratio": job_ips / forward_ips,
            "estimator_size": est.size}


def random_gccpm(path: Path, stages: int) -> Path:
    """A GCCPM checkpoint with random weights and ``stages`` refinement stages (seeded by the caller)."""
    torch.save({"state_dict": GCCPM(num_refinement_stages=stages).state_dict()}, path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", type=int, default=24)
    ap.add_argument("--stages", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda or cuda:N")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--source-size", default="256x128",
                    help="HxW of the synthetic source crops (SYSU-MM01's are a few hundred rows tall)")
    args = ap.parse_args()
    args.device = str(resolve_device(args.device))
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src_hw = tuple(int(v) for v in args.source_size.split("x"))
        synthesize("sysu", tmp / "SYSU", ids=args.ids, seed=0, image_size=src_hw)
        manifest = scan("sysu", tmp / "SYSU")
        n = len(manifest.records)
        weights = random_gccpm(tmp / "gccpm.pth", args.stages)
        print(f"{n} images, GCCPM with {args.stages} refinement stages, batch {args.batch}, device {args.device}, "
              f"{torch.get_num_threads()} torch threads")

        # 1. the estimator alone on prepared tensors, 2. end to end
        rates = estimator_rates(manifest, tmp / "SYSU", tmp / "cache_lip", weights, args.batch, args.device,
                                args.jobs)
        print(f"estimator forward only : {rates['forward_ips']:8.1f} img/s")
        print(f"vireid-prep heatmaps   : {rates['job_ips']:8.1f} img/s  (ratio {rates['ratio']:.2f}, target >= 0.85)")

        # 3. storage and read speed, JPEG vs raw crops (keypoints estimator: no inference)
        side = KeypointFileEstimator(tmp / "SYSU" / SIDE_FILE)
        sizes = {}
        reads = {}
        for fmt in ("jpeg", "raw"):
            out = tmp / f"cache_{fmt}"
            HeatmapJob(manifest, tmp / "SYSU", out, side, CacheConfig(image_format=fmt), jobs=args.jobs).run()
            sizes[fmt] = sum(p.stat().st_size for p in out.glob("shard-*.h5")) / n
            cache = HeatmapCache(out)
            t0 = time.perf_counter()
            for i in range(len(cache)):
                cache.get(i)
            reads[fmt] = len(cache) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for r in manifest.records:
            cv2.resize(cv2.imread(str(tmp / "SYSU" / r.path)), (144, 288))
        decode_ips = n / (time.perf_counter() - t0)
        src_bytes = sum(r.nbytes for r in manifest.records) / n
        print(f"bytes per image        : jpeg cache {sizes['jpeg'] / 1024:.1f} KiB, raw cache {sizes['raw'] / 1024:.1f} KiB "
              f"(source JPEGs around {args.source_size}: {src_bytes / 1024:.1f} KiB)")
        print(f"read, one process      : jpeg cache {reads['jpeg']:.0f} img/s, raw cache {reads['raw']:.0f} img/s, "
              f"decoding the original JPEGs + resize {decode_ips:.0f} img/s "
              f"(ratios {reads['jpeg'] / decode_ips:.2f} / {reads['raw'] / decode_ips:.2f})")


if __name__ == "__main__":
    main()
