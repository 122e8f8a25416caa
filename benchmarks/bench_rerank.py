"""Time and memory of k-reciprocal re-ranking at SYSU-MM01 size.

A random problem of 3,803 queries x 3,000 gallery images (a multi-shot SYSU-MM01
trial; ``--queries``, ``--gallery``), features of ``--dim`` floats (default 3,072 =
6 stripes x 512, the paper's f_ID). ``--kind random``: independent Gaussian features
(the issue's random problem); ``--kind clustered``: 96 identities, each image its
identity's centre plus Gaussian noise 5x as strong per dimension (neighbourhoods with
identity structure, plain mAP in the tens of percent as a trained model's). Each kind
runs in its own process, so that its peak memory is its own. Baseline, measured in the same run: the plain evaluation of that trial (cosine
distances + :func:`vireid.evaluation.sysu_metrics`). Printed: both times, their ratio,
the re-ranking's own steps, and the peak memory the re-ranking added (max RSS, the
inputs already allocated), against the N x N float32 distance matrix it holds.

    python benchmarks/bench_rerank.py [--kind random|clustered|both] [--queries 3803]
        [--gallery 3000] [--dim 3072] [--repeat 1]
"""
from __future__ import annotations

import argparse
import logging
import resource
import sys
import time

import numpy as np

from vireid.evaluation import sysu_metrics
from vireid.evaluation.rerank import RerankConfig, cosine_distance, k_reciprocal_rerank

NUM_IDS = 96


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(kind: str, num_q: int, num_g: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(0, NUM_IDS, num_q)
    g_pids = np.sort(rng.integers(0, NUM_IDS, num_g))
    if kind == "random":
        qf = rng.standard_normal((num_q, dim), dtype=np.float32)
        gf = rng.standard_normal((num_g, dim), dtype=np.float32)
    else:
        centres = rng.standard_normal((NUM_IDS, dim), dtype=np.float32)
        qf = centres[q_pids] + 5.0 * rng.standard_normal((num_q, dim), dtype=np.float32)
        gf = centres[g_pids] + 5.0 * rng.standard_normal((num_g, dim), dtype=np.float32)
    q_cams = rng.choice([3, 6], num_q)
    g_cams = rng.choice([1, 2, 4, 5], num_g)
    return qf, gf, q_pids, g_pids, q_cams, g_cams


def run(kind: str, num_q: int, num_g: int, dim: int, repeat: int) -> None:
    qf, gf, q_pids, g_pids, q_cams, g_cams = build(kind, num_q, num_g, dim)
    plain_s, rerank_s, steps = [], [], {}
    before = _rss_mib()
    for _ in range(repeat):
        t0 = time.perf_counter()
        q_g = cosine_distance(qf, gf)
        plain = sysu_metrics(q_g, q_pids, g_pids, q_cams, g_cams)
        plain_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        q_g = cosine_distance(qf, gf)
        q_q = cosine_distance(qf, qf)
        g_g = cosine_distance(gf, gf)
        steps["distances"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        re = k_reciprocal_rerank(q_g, q_q, g_g, RerankConfig())
        steps["re-ranking"] = time.perf_counter() - t1
        reranked = sysu_metrics(re, q_pids, g_pids, q_cams, g_cams)
        rerank_s.append(time.perf_counter() - t0)
        del q_q, g_g, re
    peak = _rss_mib() - before
    n = num_q + num_g
    dense = n * n * 4 / 2 ** 20
    print(f"== {kind}: {num_q} queries x {num_g} gallery, {dim}-d features, k1=20 k2=6 lambda=0.3")
    print(f"plain evaluation (distances + metrics): {min(plain_s):.2f} s; mAP {100 * plain.mAP:.2f}")
    print(f"re-ranked evaluation: {min(rerank_s):.2f} s (distances {steps['distances']:.2f} s, re-ranking "
          f"{steps['re-ranking']:.2f} s); mAP {100 * reranked.mAP:.2f}")
    print(f"ratio re-ranked / plain: {min(rerank_s) / min(plain_s):.1f}x")
    print(f"peak memory added by the re-ranked evaluation: {peak:.0f} MiB (max RSS; the N x N float32 "
          f"distances alone are {dense:.0f} MiB, N = {n})")
    sys.stdout.flush()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=["random", "clustered", "both"], default="both")
    ap.add_argument("--queries", type=int, default=3803)
    ap.add_argument("--gallery", type=int, default=3000)
    ap.add_argument("--dim", type=int, default=3072)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.kind != "both":
        run(args.kind, args.queries, args.gallery, args.dim, args.repeat)
        return
    import subprocess

    for kind in ("random", "clustered"):
        subprocess.run([sys.executable, __file__, "--kind", kind, "--queries", str(args.queries), "--gallery",
                        str(args.gallery), "--dim", str(args.dim), "--repeat", str(args.repeat)], check=True)


if __name__ == "__main__":
    main()
