"""Training data pipeline speed and memory: the heatmap cache against the two usual alternatives.

All three pipelines run the same :class:`~vireid.inputs.transforms.TrainTransform` (288x144,
pad-and-crop, flip, erasing box) with the same per-item generators, as ``vireid-train``
runs it: with ``device_normalise=True``, so each sample leaves the worker as uint8 and
the trainer normalises and erases the batch on its device
(:func:`~vireid.inputs.transforms.normalise_batch`); ``--cpu-normalise`` measures the
float32 path instead. Over the same cross-modality batches (:class:`~vireid.inputs.sampler.CrossModalitySampler`, D=8, K=4,
keyed draws), on one synthetic SYSU-MM01 tree built in a temporary folder:

* **cache**: :class:`~vireid.inputs.dataset.CacheDataset` over the HDF5 heatmap cache as
  ``vireid-prep heatmaps`` writes it by default (``--image-format raw``: uncompressed
  288x144 crops and uint8 heatmaps, one ``preadv`` each) -- this project's pipeline;
  ``--cache-format jpeg`` measures the compact JPEG cache instead;
* **(a) files**: decode the original JPEG, resize it, and ``np.load`` a per-image
  float32 heatmap ``.npy`` file (training without a cache). The source JPEGs are
  rendered at a realistic size: real SYSU-MM01 crops are larger than the 288x144 input
  and vary in size; we assume RGB crops around 400x200 and IR crops around 288x144
  (``--rgb-source-size``, ``--ir-source-size``; the synthetic generator varies each
  image's height by -15 %..+20 % and its aspect by +-15 %). RegDB's 128x64 images
  would make (a) cheaper: the target is stated for SYSU-MM01;
* **(b) RAM**: the whole training set preloaded as arrays, uint8 images resized to
  288x144 and float32 heatmaps (how the AGW / hetero-center baselines hold their
  images: ``train_*_resized_img.npy`` loaded whole).

Each pipeline runs in a fresh child process (so memory figures do not mix): samples/s of
the dataset alone (one process = one worker's speed) and through a DataLoader with 0 and
2 workers; memory as the child's peak RSS above its RSS after imports, and tracemalloc's
peak (numpy buffers included) while building the dataset and reading one epoch item by
item (the 0-worker case). OpenCV and torch are limited to one thread everywhere.

    python benchmarks/bench_data_pipeline.py [--ids 16] [--rgb-source-size 400x200] [--cpu-normalise]
        [--ir-source-size 288x144] [--cache-format raw|jpeg] [--batches 8]

Row checks: the cache child also reads the same items through a reader with the per-row
checksum checks off (``HeatmapCache(check_rows=False)``), alternating checked and unchecked
passes (best of ``--check-rounds`` each, so a busy machine's drift hits both alike), for the
dataset (what a worker serves) and for the bare ``read_arrays``.

Targets (on the one-process speed, i.e. per worker): cache >= 3x (a); cache within 1.5x
of (b), i.e. >= 0.67x, at a tenth of (b)'s memory; the row checks cost at most 5% of the
cache's samples/s; printed as PASS / FAIL lines. (b)'s
memory grows with the data set and the cache's does not, so the memory target is checked
at full SYSU-MM01 size (34,167 images): (b)'s measured bytes per image times 34,167
against the cache's measured peak. The ratio at this run's few hundred images is printed
too.
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
from vireid.inputs.dataset import CacheDataset, training_indices  # noqa: E402
from vireid.data.manifest import Manifest  # noqa: E402
from vireid.inputs.sampler import CrossModalitySampler, SamplerConfig  # noqa: E402
from vireid.data.scan import scan  # noqa: E402
from vireid.cache.reader import CacheConfig, HeatmapCache  # noqa: E402
from vireid.inputs.transforms import TrainTransform, TransformConfig  # noqa: E402

log = logging.getLogger("bench_data_pipeline")
SEED = 0
#: as vireid-train: workers stop after the geometry, the device normalises (see the docstring)
DEVICE_NORMALISE = os.environ.get("VIREID_BENCH_CPU_NORMALISE", "0") != "1"
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
        self.work, self.base = work, base
        # RGB sources from the RGB-size tree, IR sources from the IR-size tree (same paths)
        self.sources = [str(work / ("src-ir" if m == 1 else "src-rgb") / rel) for rel, m in zip(paths, base.modalities)]
        self.paths = paths
        self.transform = TrainTransform(TransformConfig(), device_normalise=DEVICE_NORMALISE)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key):
        pos, epoch, draw = key
        rel = self.paths[pos]
        sample = {"image": cv2.imread(self.sources[pos], cv2.IMREAD_COLOR),
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
        self.transform = TrainTransform(TransformConfig(), device_normalise=DEVICE_NORMALISE)

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


def _best_pass(fn, keys, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for k in keys:
            fn(k)
        best = min(best, time.perf_counter() - t0)
    return best


def row_check_cost(work: Path, train: List[int], keys, rounds: int) -> Dict[str, float]:
    """Samples/s of the dataset and us per ``read_arrays``, with the row checks and without,
    measured in alternating passes over the same items."""
    transform = TrainTransform(TransformConfig(), device_normalise=DEVICE_NORMALISE)
    sets = {on: CacheDataset(HeatmapCache(work / "cache", check_rows=on), train, transform=transform, seed=SEED)
            for on in (True, False)}
    rows = [int(sets[True].indices[k[0]]) for k in keys]
    for ds in sets.values():
        ds[keys[0]]                                                # opens the shards
    best: Dict[str, float] = {}
    for _ in range(rounds):
        for on, ds in sets.items():
            t = _best_pass(ds.__getitem__, keys, 1)
            best[f"dataset_{on}"] = min(best.get(f"dataset_{on}", t), t)
            t = _best_pass(lambda i, c=ds.cache: c.read_arrays(i, quantized=True), rows, 1)
            best[f"reader_{on}"] = min(best.get(f"reader_{on}", t), t)
    return {"checked_sps": len(keys) / best["dataset_True"], "unchecked_sps": len(keys) / best["dataset_False"],
            "checked_read_us": best["reader_True"] / len(rows) * 1e6,
            "unchecked_read_us": best["reader_False"] / len(rows) * 1e6}


def child(mode: str, work: Path, batches: int, check_rounds: int = 5) -> Dict[str, Any]:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    cache = HeatmapCache(work / "cache")
    train = json.loads((work / "train.json").read_text())
    rss0 = rss_bytes()
    tracemalloc.start()
    base = CacheDataset(cache, train, transform=TrainTransform(TransformConfig(), device_normalise=DEVICE_NORMALISE),
                        seed=SEED)
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
        out["checks"] = row_check_cost(work, train, keys, check_rounds)
    for workers in (0, 2):
        sampler.set_epoch(1)
        loader = DataLoader(ds, batch_sampler=sampler, num_workers=workers, worker_init_fn=_worker_init if workers else None)
        t0 = time.perf_counter()
        n = sum(int(b["label"].numel()) for b in loader)
        out[f"loader{workers}"] = n / (time.perf_counter() - t0)
    return out


# ---------------------------------------------------------------------------- parent: data and report
def prepare(work: Path, ids: int, rgb_size, ir_size, cache_format: str) -> Dict[str, Any]:
    synthesize("sysu", work / "SYSU", ids=ids, seed=SEED)
    manifest = scan("sysu", work / "SYSU")
    manifest.save(work / "manifest.json")
    HeatmapJob(manifest, work / "SYSU", work / "cache", KeypointFileEstimator(work / "SYSU" / SIDE_FILE),
               CacheConfig(image_format=cache_format), jobs=1).run()
    # the sources (a) decodes: the same identities, cameras and file names, rendered larger
    synthesize("sysu", work / "src-rgb", ids=ids, seed=SEED, image_size=rgb_size)
    synthesize("sysu", work / "src-ir", ids=ids, seed=SEED, image_size=ir_size)
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
    shapes = {m: [] for m in (0, 1)}
    for i in train:
        rel = cache.paths[i]
        m = 1 if rel.split("/")[0] in ("cam3", "cam6") else 0
        src = work / ("src-ir" if m else "src-rgb") / rel
        if not src.is_file():
            raise RuntimeError(f"{src}: the larger source tree lacks a training image")
        shapes[m].append(cv2.imread(str(src), cv2.IMREAD_COLOR).shape[:2])
    cache_bytes = sum(p.stat().st_size for p in (work / "cache").glob("shard-*.h5"))
    ram_bytes = np.stack(images).nbytes + np.stack(maps).nbytes
    mean = {m: np.asarray(v, float).mean(0) if v else np.zeros(2) for m, v in shapes.items()}
    print(f"{len(train)} training images ({len(cache)} in the cache) from {ids} synthetic identities; "
          f"(a)'s source JPEGs: RGB mean {mean[0][0]:.0f}x{mean[0][1]:.0f}, IR mean {mean[1][0]:.0f}x{mean[1][1]:.0f} "
          f"(HxW); cache ({cache_format}) on disk {cache_bytes / len(cache) / 1024:.1f} KiB/image "
          f"({cache_bytes / len(cache) * N_SYSU / 2**30:.2f} GiB for SYSU-MM01), RAM set (b) "
          f"{ram_bytes / len(train) / 1024:.1f} KiB/image ({ram_bytes / len(train) * N_SYSU / 2**30:.1f} GiB for "
          f"SYSU-MM01's {N_SYSU} images)")
    return {"n_train": len(train), "ram_bytes_per_image": ram_bytes / len(train)}


def run_child(mode: str, work: Path, batches: int, cpu_normalise: bool, check_rounds: int) -> Dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO),
               VIREID_BENCH_CPU_NORMALISE="1" if cpu_normalise else "0")
    res = subprocess.run([sys.executable, __file__, "--child", mode, "--work", str(work), "--batches", str(batches),
                          "--check-rounds", str(check_rounds)],
                         env=env, capture_output=True, text=True, check=False)
    if res.returncode:
        raise RuntimeError(f"child {mode} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", type=int, default=16)
    ap.add_argument("--rgb-source-size", default="400x200", help="mean HxW of (a)'s RGB source JPEGs")
    ap.add_argument("--ir-source-size", default="288x144", help="mean HxW of (a)'s IR source JPEGs")
    ap.add_argument("--cache-format", choices=("raw", "jpeg"), default="raw", help="the cache's --image-format")
    ap.add_argument("--batches", type=int, default=8, help="batches of 64 per measured pass")
    ap.add_argument("--cpu-normalise", action="store_true",
                    help="normalise and erase in the worker (float32 out) instead of on the device")
    ap.add_argument("--check-rounds", type=int, default=5,
                    help="alternating checked / unchecked passes for the row-check cost (best of each)")
    ap.add_argument("--child", choices=("cache", "files", "ram"))
    ap.add_argument("--work")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.work), args.batches, args.check_rounds)))
        return
    logging.basicConfig(level=logging.WARNING)
    sizes = [tuple(int(v) for v in a.lower().split("x")) for a in (args.rgb_source_size, args.ir_source_size)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        info = prepare(work, args.ids, sizes[0], sizes[1], args.cache_format)
        results = {m: run_child(m, work, args.batches, args.cpu_normalise, args.check_rounds)
                   for m in ("cache", "files", "ram")}
    n_train = info["n_train"]
    mib = 2 ** 20
    print(f"{results['cache']['samples']} samples per pass, batch 64 (8 ids x 4 RGB x 4 IR), 1 thread per process; "
          f"normalisation {'in the worker (float32 out)' if args.cpu_normalise else 'on the device (uint8 out)'}")
    print(f"{'pipeline':<10} {'dataset 1 proc':>15} {'loader 0 wk':>12} {'loader 2 wk':>12} "
          f"{'peak RSS':>10} {'traced peak':>12}")
    for m, r in results.items():
        print(f"{m:<10} {r['single']:>11.0f} s/s {r['loader0']:>8.0f} s/s {r['loader2']:>8.0f} s/s "
              f"{r['rss_peak'] / mib:>6.1f} MiB {r['traced_peak'] / mib:>8.1f} MiB")
    c, a, b = results["cache"], results["files"], results["ram"]
    print(f"cache reads       : HeatmapCache.read_arrays {c['reader_us']:.0f} us/item, HeatmapCache.get "
          f"{c['get_us']:.0f} us/item")
    ra, rb = c["single"] / a["single"], c["single"] / b["single"]
    print(f"cache / (a) files : {ra:.2f}x per worker (1 proc), {c['loader2'] / a['loader2']:.2f}x through a "
          f"2-worker DataLoader")
    print(f"cache / (b) RAM   : {rb:.2f}x per worker (1 proc), {c['loader2'] / b['loader2']:.2f}x through a "
          f"2-worker DataLoader")
    # memory at full SYSU-MM01 size: (b) holds every image; the cache's peak does not grow with N
    b_full = info["ram_bytes_per_image"] * N_SYSU
    c_peak = max(c["rss_peak"], c["traced_peak"])
    mem_here = c["rss_peak"] / b["rss_peak"]
    mem_full = c_peak / b_full
    print(f"memory cache/(b)  : RSS {mem_here:.2f}, traced {c['traced_peak'] / b['traced_peak']:.2f} at this run's "
          f"{n_train} images; at SYSU-MM01 size {c_peak / mib:.0f} MiB / {b_full / 2**30:.1f} GiB = {mem_full:.4f}")
    ck = c["checks"]
    cost = 1.0 - ck["checked_sps"] / ck["unchecked_sps"]
    print(f"row checks (xxh3) : dataset {ck['checked_sps']:.0f} s/s checked, {ck['unchecked_sps']:.0f} s/s unchecked "
          f"(ratio {ck['checked_sps'] / ck['unchecked_sps']:.3f}, cost {cost:.1%}); read_arrays alone "
          f"{ck['checked_read_us']:.0f} us checked, {ck['unchecked_read_us']:.0f} us unchecked "
          f"(ratio {ck['unchecked_read_us'] / ck['checked_read_us']:.3f})")
    checks = [("row checks cost <= 5% of the cache's samples/s", cost, cost <= 0.05),
              ("cache >= 3x (a) files, per worker", ra, ra >= 3.0),
              ("cache within 1.5x of (b) RAM (>= 0.67x), per worker", rb, rb >= 1 / 1.5),
              ("cache memory <= 0.1x (b)'s at SYSU-MM01 size", mem_full, mem_full <= 0.1)]
    for name, value, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {value:.3g}")


if __name__ == "__main__":
    main()
