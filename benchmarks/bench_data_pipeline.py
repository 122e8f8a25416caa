"""Training data pipeline speed and memory: the heatmap cache against the two usual alternatives.

All three pipelines run the same :class:`~vireid.data.transforms.TrainTransform` (288x144,
pad-and-crop, flip, erasing, normalisation) with the same per-item generators, over the
same cross-modality batches (:class:`~vireid.data.sampler.CrossModalitySampler`, D=8, K=4,
keyed draws), on one synthetic SYSU-MM01 tree built in a temporary folder:

* **cache**: :class:`~vireid.data.dataset.CacheDataset` over the HDF5 heatmap cache
  (JPEG crops at 288x144, uint8 heatmaps, gzip) -- this project's pipeline;
* **(a) files**: decode the original JPEG, resize it, and ``np.load`` a per-image
  float32 heatmap ``.npy`` file (training without a cache);
* **(b) RAM**: the whole training set preloaded as arrays, uint8 images resized to
  288x144 and float32 heatmaps (how the AGW / hetero-center baselines hold their
  images: ``train_*_resized_img.npy`` loaded whole).

Each pipeline runs in a fresh child process (so memory figures do not mix): samples/s of
the dataset alone (one process = one worker's speed) and through a DataLoader with 0 and
2 workers; memory as the child's peak RSS above its RSS after imports, and tracemalloc's
peak (numpy buffers included) while building the dataset and reading one epoch item by
item (the 0-worker case). OpenCV and torch are limited to one thread everywhere.

    python benchmarks/bench_data_pipeline.py [--ids 16] [--source-size 288x144] [--batches 8]

Targets: cache >= 3x (a); cache within 1.5x of (b) at a tenth of (b)'s memory. With a
few hundred images the RAM set is small, so the memory ratio printed is for this run's
size; the printed bytes per image give the ratio at full SYSU-MM01 size (34,167 images).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Dict, List

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator  # noqa: E402
from pipeline.heatmaps import HeatmapJob  # noqa: E402
from pipeline.synth import synthesize  # noqa: E402
from vireid.data.dataset import CacheDataset, training_indices  # noqa: E402
from vireid.data.manifest import Manifest  # noqa: E402
from vireid.data.sampler import CrossModalitySampler, SamplerConfig  # noqa: E402
from vireid.data.scan import scan  # noqa: E402
from vireid.data.shards import CacheConfig, HeatmapCache  # noqa: E402
from vireid.data.transforms import TrainTransform, TransformConfig  # noqa: E402

log = logging.getLogger("bench_data_pipeline")
SEED = 0
N_SYSU = 34167


def rss_bytes(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------------------- the two baselines
class FileDataset(Dataset):
    """(a): original JPEG + per-image float32 heatmap .npy, same transform and generators."""

    def __init__(self, work: Path, paths: List[str], base: CacheDataset):
        self.work, self.paths, self.base = work, paths, base
        self.transform = TrainTransform(TransformConfig())

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key):
        pos, epoch, draw = key
        rel = self.paths[pos]
        sample = {"image": cv2.imread(str(self.work / "SYSU" / rel), cv2.IMREAD_COLOR),
                  "heatmaps": np.load(self.work / "npy" / (rel + ".npy")),
                  "confidence": np.load(self.work / "npy" / (rel + ".conf.npy"))}
        out = dict(self.transform(sample, self.base.rng_for(pos, epoch, draw)))
        out.update(label=int(self.base.labels[pos]), modality=int(self.base.modalities[pos]))
        return out


class RamDataset(Dataset):
    """(b): every training image and heatmap held in RAM as arrays."""

    def __init__(self, work: Path, base: CacheDataset):
        self.images = np.load(work / "ram_images.npy")          # (N, 288, 144, 3) uint8
        self.heatmaps = np.load(work / "ram_heatmaps.npy")      # (N, 16, 72, 36) float32
        self.confidence = np.load(work / "ram_confidence.npy")  # (N, 16)
        self.base = base
        self.transform = TrainTransform(TransformConfig())

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key):
        pos, epoch, draw = key
        sample = {"image": self.images[pos], "heatmaps": self.heatmaps[pos], "confidence": self.confidence[pos]}
        out = dict(self.transform(sample, self.base.rng_for(pos, epoch, draw)))
        out.update(label=int(self.base.labels[pos]), modality=int(self.base.modalities[pos]))
        return out


# ---------------------------------------------------------------------------- child: one pipeline
def _worker_init(_: int) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def child(mode: str, work: Path, batches: int) -> Dict[str, Any]:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    cache = HeatmapCache(work / "cache")
    train = json.loads((work / "train.json").read_text())
    rss0 = rss_bytes()
    tracemalloc.start()
    base = CacheDataset(cache, train, transform=TrainTransform(TransformConfig()), seed=SEED)
    if mode == "cache":
        ds: Dataset = base
    elif mode == "files":
        ds = FileDataset(work, [cache.paths[i] for i in train], base)
    else:
        ds = RamDataset(work, base)
    sampler = CrossModalitySampler(base.pids, base.modalities, SamplerConfig(batches_per_epoch=batches),
                                   seed=SEED, keyed=True)
    keys = [k for batch in sampler for k in batch]
    ds[keys[0]]                                                    # warm-up (opens files)
    t0 = time.perf_counter()
    for k in keys:
        ds[k]
    single = len(keys) / (time.perf_counter() - t0)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_peak = rss_bytes("VmHWM") - rss0
    out = {"mode": mode, "single": single, "traced_peak": traced_peak, "rss_peak": rss_peak, "samples": len(keys)}
    if mode == "cache":                                           # the reader against HeatmapCache.get
        rows = [int(base.indices[k[0]]) for k in keys]
        for name, fn in (("get_us", cache.get), ("reader_us", base.cache.read_arrays)):
            t0 = time.perf_counter()
            for i in rows:
                fn(i)
            out[name] = (time.perf_counter() - t0) / len(rows) * 1e6
    for workers in (0, 2):
        sampler.set_epoch(1)
        loader = DataLoader(ds, batch_sampler=sampler, num_workers=workers, worker_init_fn=_worker_init if workers else None)
        t0 = time.perf_counter()
        n = sum(int(b["label"].numel()) for b in loader)
        out[f"loader{workers}"] = n / (time.perf_counter() - t0)
    return out


# ---------------------------------------------------------------------------- parent: data and report
def prepare(work: Path, ids: int, source_size) -> int:
    synthesize("sysu", work / "SYSU", ids=ids, seed=SEED, image_size=source_size)
    manifest = scan("sysu", work / "SYSU")
    manifest.save(work / "manifest.json")
    HeatmapJob(manifest, work / "SYSU", work / "cache", KeypointFileEstimator(work / "SYSU" / SIDE_FILE),
               CacheConfig(), jobs=1).run()
    cache = HeatmapCache(work / "cache")
    train, _ = training_indices(cache, Manifest.load(work / "manifest.json"))
    (work / "train.json").write_text(json.dumps(train))
    images, maps, conf = [], [], []
    for i in train:
        e = cache.get(i)
        rel = cache.paths[i]
        target = work / "npy" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(str(target) + ".npy", e["heatmaps"])
        np.save(str(target) + ".conf.npy", e["confidence"])
        images.append(e["image"])
        maps.append(e["heatmaps"])
        conf.append(e["confidence"])
    np.save(work / "ram_images.npy", np.stack(images))
    np.save(work / "ram_heatmaps.npy", np.stack(maps))
    np.save(work / "ram_confidence.npy", np.stack(conf))
    cache_bytes = sum(p.stat().st_size for p in (work / "cache").glob("shard-*.h5"))
    ram_bytes = np.stack(images).nbytes + np.stack(maps).nbytes
    print(f"{len(train)} training images ({len(cache)} in the cache) from {ids} synthetic identities, "
          f"sources around {source_size[0]}x{source_size[1]}; cache on disk {cache_bytes / len(cache) / 1024:.1f} "
          f"KiB/image, RAM set {ram_bytes / len(train) / 1024:.1f} KiB/image "
          f"({ram_bytes / len(train) * N_SYSU / 2**30:.1f} GiB for SYSU-MM01's {N_SYSU} images)")
    return len(train)


def run_child(mode: str, work: Path, batches: int) -> Dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, __file__, "--child", mode, "--work", str(work), "--batches", str(batches)],
                         env=env, capture_output=True, text=True, check=False)
    if res.returncode:
        raise RuntimeError(f"child {mode} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", type=int, default=16)
    ap.add_argument("--source-size", default="288x144", help="base HxW of the synthetic source JPEGs")
    ap.add_argument("--batches", type=int, default=8, help="batches of 64 per measured pass")
    ap.add_argument("--child", choices=("cache", "files", "ram"))
    ap.add_argument("--work")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.work), args.batches)))
        return
    logging.basicConfig(level=logging.WARNING)
    h, w = (int(v) for v in args.source_size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        n_train = prepare(work, args.ids, (h, w))
        results = {m: run_child(m, work, args.batches) for m in ("cache", "files", "ram")}
    mib = 2 ** 20
    print(f"{results['cache']['samples']} samples per pass, batch 64 (8 ids x 4 RGB x 4 IR), 1 thread per process")
    print(f"{'pipeline':<10} {'dataset 1 proc':>15} {'loader 0 wk':>12} {'loader 2 wk':>12} "
          f"{'peak RSS':>10} {'traced peak':>12}")
    for m, r in results.items():
        print(f"{m:<10} {r['single']:>11.0f} s/s {r['loader0']:>8.0f} s/s {r['loader2']:>8.0f} s/s "
              f"{r['rss_peak'] / mib:>6.1f} MiB {r['traced_peak'] / mib:>8.1f} MiB")
    c, a, b = results["cache"], results["files"], results["ram"]
    print(f"cache / (a) files : {c['single'] / a['single']:.2f}x (1 proc), {c['loader2'] / a['loader2']:.2f}x "
          f"(2 workers)   target >= 3x")
    print(f"cache / (b) RAM   : {c['single'] / b['single']:.2f}x (1 proc), {c['loader2'] / b['loader2']:.2f}x "
          f"(2 workers)   target >= 0.67x (within 1.5x)")
    print(f"cache reads       : HeatmapCache.read_arrays {c['reader_us']:.0f} us/item, HeatmapCache.get "
          f"{c['get_us']:.0f} us/item")
    print(f"memory cache/(b)  : traced {c['traced_peak'] / b['traced_peak']:.2f}, RSS {c['rss_peak'] / b['rss_peak']:.2f} "
          f"at {n_train} images   target <= 0.1")


if __name__ == "__main__":
    main()
