"""LLCM's use of the metric kernel (private; :func:`llcm_rank_sums` is its one entry).

LLCM drops, for each query, the gallery images of its identity *and* its camera number.
The columns removed therefore depend on the query's identity, not only on its camera,
so they cannot be left out of a class's gallery as SYSU-MM01's camera pairs are
(:func:`vireid.evaluation._kernel.rank_sums`). Each query's correct matches must instead
be the head of its identity block and the images it drops the tail:

* gallery already in identity order (the LLCM lists are; the common case): one class,
  no column take; in each chunk row the kept images of the query's own block move to
  its front, in order. The block is a run of columns, so every order the ranking reads
  (kept images among themselves, and against any image outside the block, ties broken
  by column) is unchanged;
* otherwise the queries of one camera form a class whose gallery holds every column,
  grouped by identity with that camera's images last in each identity.

The dropped images are all of the query's own identity, so once their distances are set
to +infinity in the chunk (a copy) they rank after every kept image without changing
anything the metrics read: the ranks of the kept correct matches (AP, INP, the standard
CMC), and the identities ranked before the first correct match (the de-duplicated CMC;
the query's own identity is never among them). The chunked ranking itself is the
SYSU-MM01 kernel's (:func:`vireid.evaluation._kernel._rank_matches`), unchanged. At
LLCM's size this costs 5-10 % over that kernel with nothing dropped (CPU time).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from vireid.evaluation._kernel import (
    _DEFAULT_CHUNK_ELEMENTS,
    RankSums,
    _check_finite,
    _class_gallery,
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


@dataclass
class _Drop:
    """How a class's chunk rows lose their dropped images: for each of its valid queries,
    ``full`` images in its identity block, its kept matches first (``count`` of the plan)
    and the dropped rest. ``src_off`` / ``src_slot`` (in-place path): query ``i``'s kept
    images sit at slots ``src_slot[src_off[i]:src_off[i + 1]]`` of its block and move to its
    front, in order; None when they are already there (camera classes)."""

    full: np.ndarray  # (Q,)
    src_off: Optional[np.ndarray] = None  # (Q + 1,)
    src_slot: Optional[np.ndarray] = None  # (n,)


def _drop_own_camera(dg: np.ndarray, plan: _ClassPlan, drop: _Drop, lo: int) -> None:
    """In place on a chunk's distances: move each row's kept matches to the front of its
    identity block (in order) and set the distances of its dropped images, the rest of
    the block, to +inf."""
    b, g = dg.shape
    flat_dg = dg.reshape(-1)
    block = np.arange(b) * g + plan.start[lo:lo + b]  # (B,) flat start of each row's block
    count = plan.count[lo:lo + b]
    if drop.src_slot is not None:
        m0, m1 = drop.src_off[lo], drop.src_off[lo + b]
        owner = np.repeat(np.arange(b), count)
        dest = block[owner] + np.arange(m1 - m0) - (drop.src_off[lo:lo + b] - m0)[owner]
        flat_dg[dest] = flat_dg[block[owner] + drop.src_slot[m0:m1]]  # read (a copy), then write
    n = drop.full[lo:lo + b] - count
    if n.any():
        first = block + count  # (B,) flat, first dropped
        flat_dg[np.repeat(first - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))] = np.inf


def _in_place_plan(q_pids, g_pids, q_camids, g_camids, rows, step_budget, chunk_size):
    """The one class of every query when the gallery is already in identity order (the
    LLCM lists are): the distance rows need no column take, and each row's kept matches
    are moved to the front of its block, which keeps every order the ranking reads (its
    block is a run of columns and the moves keep the kept images' order). None if the
    gallery is not in identity order."""
    gal = _class_gallery(q_pids[rows], g_pids, None)
    if not gal.in_place:
        return None
    # Own-camera images of each query's identity: a (pid, camera) pair count.
    cams, g_cam_code = np.unique(g_camids, return_inverse=True)
    pair = gal.ident * len(cams) + g_cam_code  # in place: ident is per column
    pair_count = np.bincount(pair, minlength=gal.num_ids * len(cams))
    q_cam_code = np.minimum(np.searchsorted(cams, q_camids[rows]), len(cams) - 1)
    q_ident = gal.ident[gal.q_start]  # (meaningless where q_count == 0)
    own = np.where(
        (gal.q_count > 0) & (cams[q_cam_code] == q_camids[rows]),
        pair_count[q_ident * len(cams) + q_cam_code], 0,
    )
    kept = gal.q_count - own
    valid = kept > 0
    rows, start, full, kept = rows[valid], gal.q_start[valid], gal.q_count[valid], kept[valid]
    # kept slots of each block: the block's columns whose camera is not the query's
    owner = np.repeat(np.arange(len(rows)), full)
    slot = np.arange(int(full.sum())) - np.repeat(np.cumsum(full) - full, full)
    keep = g_camids[start[owner] + slot] != q_camids[rows][owner]
    src_off = np.concatenate(([0], np.cumsum(kept)))
    step = chunk_size or max(1, step_budget // max(len(g_pids), 1))
    plan = _class_plan(rows, start, kept, gal, min(step, max(len(rows), 1)))
    return plan, _Drop(full, src_off, slot[keep])


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
    plans: List[Tuple[_ClassPlan, _Drop]] = []
    skipped = np.ones(num_q, dtype=bool)  # rows no chunk reads (their finiteness is checked here)
    in_place = _in_place_plan(q_pids, g_pids, q_camids, g_camids, np.arange(num_q), budget, chunk_size)
    if in_place is not None:
        if in_place[0].num_queries:
            plans.append(in_place)
    else:  # one class per query camera: columns grouped by identity, that camera's images last
        for cam in np.unique(q_camids):
            rows_all = np.flatnonzero(q_camids == cam)
            gal, dropped = _camera_class_gallery(q_pids[rows_all], g_pids, g_camids == cam)
            valid = gal.q_count > 0  # no correct match left: skipped for every metric
            if not valid.any():
                continue
            rows_all = rows_all[valid]
            step = chunk_size or max(1, budget // max(len(gal.cols), 1))
            plan = _class_plan(rows_all, gal.q_start[valid], gal.q_count[valid], gal, min(step, len(rows_all)))
            plans.append((plan, _Drop(gal.q_count[valid] + dropped[valid])))
    for plan, _ in plans:
        skipped[plan.rows] = False
    jobs = [(plan, drop, lo) for plan, drop in plans for lo in range(0, plan.num_queries, plan.step)]

    _check_finite(distmat[skipped])

    def run(job) -> _ChunkRanks:
        plan, drop, lo = job
        dg = np.take(distmat, plan.rows[lo:lo + plan.step], axis=0)  # (B, G) a copy: every column checked
        _check_finite(dg)
        if not plan.gal.in_place:
            dg = np.take(dg, plan.gal.cols, axis=1)  # grouped by identity, own camera last
        _drop_own_camera(dg, plan, drop, lo)
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
