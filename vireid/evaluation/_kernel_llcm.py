"""LLCM's use of the metric kernel (private; :func:`llcm_rank_sums` is its one entry).

LLCM drops, for each query, the gallery images of its identity *and* its camera number.
The columns removed therefore depend on the query's identity, not only on its camera,
so they cannot be left out of a class's gallery as SYSU-MM01's camera pairs are
(:func:`vireid.evaluation._kernel.rank_sums`). Instead the queries of one camera form a
class whose gallery holds every column, grouped by identity and, inside an identity,
with that camera's images last. A query's correct matches are then the head of its
identity block and the images it drops the tail. Those dropped images are all of the
query's own identity, so after their distances are set to +infinity in the chunk
(a copy) they rank after every kept image without changing anything the metrics read:
the ranks of the kept correct matches (AP, INP, the standard CMC), and the identities
ranked before the first correct match (the de-duplicated CMC; the query's own identity
is never among them). The chunked ranking itself is the SYSU-MM01 kernel's
(:func:`vireid.evaluation._kernel._rank_matches`), unchanged.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

import numpy as np

from vireid.evaluation._kernel import (
    _DEFAULT_CHUNK_ELEMENTS,
    RankSums,
    _check_finite,
    _class_metrics,
    _class_plan,
    _ClassGallery,
    _ClassPlan,
    _ChunkRanks,
    _rank_matches,
    _resolve_workers,
    _single_threaded_torch,
)


def _camera_class_gallery(
    q_pids: np.ndarray, g_pids: np.ndarray, same_camera: np.ndarray
) -> Tuple[_ClassGallery, np.ndarray]:
    """The gallery of the queries of one camera (``same_camera``: (G,) bool, the columns of
    that camera number): every column, by identity, the camera's own images last in each
    identity (column order kept otherwise). ``q_count`` counts a query's kept matches;
    also returns (Q,) the number of dropped images right after them."""
    num_g = len(g_pids)
    cols = np.lexsort((np.arange(num_g), same_camera, g_pids))
    uniq, starts, counts = np.unique(g_pids[cols], return_index=True, return_counts=True)
    ident = np.repeat(np.arange(len(uniq)), counts)
    own = np.bincount(ident[same_camera[cols]], minlength=len(uniq))  # per identity: this camera's images
    code = np.minimum(np.searchsorted(uniq, q_pids), len(uniq) - 1)
    present = uniq[code] == q_pids
    gal = _ClassGallery(
        cols=cols,
        ident=ident,
        num_ids=len(uniq),
        num_columns=num_g,
        in_place=bool(np.all(cols == np.arange(num_g))),
        q_start=np.where(present, starts[code], 0),
        q_count=np.where(present, counts[code] - own[code], 0),
    )
    return gal, np.where(present, own[code], 0)


def _drop_own_camera(dg: np.ndarray, plan: _ClassPlan, dropped: np.ndarray, lo: int) -> None:
    """Set to +inf, in place, the distances of each chunk row's dropped images: the
    ``dropped`` columns that follow its kept matches in its identity block."""
    b, g = dg.shape
    n = dropped[lo:lo + b]
    if not n.any():
        return
    first = np.arange(b) * g + plan.start[lo:lo + b] + plan.count[lo:lo + b]  # (B,) flat, first dropped
    offset = np.cumsum(n) - n
    flat = np.repeat(first - offset, n) + np.arange(int(n.sum()))
    dg.reshape(-1)[flat] = np.inf


def llcm_rank_sums(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int,
    chunk_size: Optional[int],
    workers: Optional[int],
) -> RankSums:
    """AP, INP and CMC hit sums (standard and de-duplicated) of a validated distance matrix
    under LLCM's rule (finiteness checked here, chunk by chunk); arguments as
    :func:`vireid.evaluation.metrics.rank_metrics`."""
    num_q = distmat.shape[0]
    workers = _resolve_workers(workers)
    budget = _DEFAULT_CHUNK_ELEMENTS * (2 if workers > 1 else 1)  # as rank_sums
    plans: List[Tuple[_ClassPlan, np.ndarray]] = []
    jobs = []
    skipped = np.ones(num_q, dtype=bool)  # rows no chunk reads (their finiteness is checked here)
    for cam in np.unique(q_camids):
        rows_all = np.flatnonzero(q_camids == cam)
        gal, dropped = _camera_class_gallery(q_pids[rows_all], g_pids, g_camids == cam)
        valid = gal.q_count > 0  # no correct match left: skipped for every metric
        if not valid.any():
            continue
        rows_all = rows_all[valid]
        skipped[rows_all] = False
        step = chunk_size or max(1, budget // max(len(gal.cols), 1))
        plan = _class_plan(rows_all, gal.q_start[valid], gal.q_count[valid], gal, min(step, len(rows_all)))
        plans.append((plan, dropped[valid]))
        jobs += [(plan, dropped[valid], lo) for lo in range(0, plan.num_queries, plan.step)]

    _check_finite(distmat[skipped])

    def run(job) -> _ChunkRanks:
        plan, dropped, lo = job
        dg = np.take(distmat, plan.rows[lo:lo + plan.step], axis=0)  # (B, G) a copy: every column checked
        _check_finite(dg)
        if not plan.gal.in_place:
            dg = np.take(dg, plan.gal.cols, axis=1)  # grouped by identity, own camera last
        _drop_own_camera(dg, plan, dropped, lo)
        return _rank_matches(dg, plan, lo, True)

    workers = max(1, min(workers, len(jobs)))
    with _single_threaded_torch():
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                ranked = list(pool.map(run, jobs))  # in job order: sums independent of workers
        else:
            ranked = [run(job) for job in jobs]
    parts = [
        _class_metrics(plan, [r for (p, _, _), r in zip(jobs, ranked) if p is plan], max_rank)
        for plan, _ in plans
    ]
    ap_sum = float(np.sum(np.concatenate([p[0] for p in parts]))) if parts else 0.0
    inp_sum = float(np.sum(np.concatenate([p[1] for p in parts]))) if parts else 0.0
    num_valid = int(sum(plan.num_queries for plan, _ in plans))
    zeros = np.zeros(max_rank + 1, dtype=np.int64)
    std_hits = sum((p[2] for p in parts), zeros)
    dedup_hits = sum((p[3] for p in parts), zeros)
    return RankSums(ap_sum, inp_sum, num_valid, std_hits, dedup_hits)
