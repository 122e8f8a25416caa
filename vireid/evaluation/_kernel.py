"""The metric kernel of :mod:`vireid.evaluation.metrics`: exact ranks of every correct
match, without sorting a distance row (private; :func:`rank_sums` is its one entry).

Implementation: no Python loop per query and no sort of a distance row. Queries
are grouped into classes that rank the same gallery columns (SYSU-MM01: camera-3
queries without camera 2, the others with the whole gallery); a class's kept columns
are taken once per chunk of queries (about 256k distances), grouped by identity. In a
chunk, each row's distances pass through a monotone map spanning the row's correct
matches whose integer part is a bucket (about one image per bucket), one ``bincount``
counts the images of every (row, bucket), and only the images sharing a bucket with a
correct match are ordered exactly, by (distance, gallery index). That gives the exact
rank of every correct match (ties included) in a few passes over the chunk. The images
before a row's first match are those of its lowest bucket plus those ordered before it
in its bucket, so the de-duplicated rank is the number of distinct identities among
them. The correct matches of a class are listed once (:class:`_ClassPlan`) and AP, INP
and the CMC counts are computed once per class from the ranks of all its chunks. Chunks
can run on several threads (``workers``); per-query values are summed in a fixed order,
so results do not depend on the chunks or the threads. The
readable per-query version is :mod:`vireid.evaluation.reference`;
``benchmarks/bench_eval_metrics.py`` times both.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

#: Distances per chunk of queries (the chunk's working arrays stay in the CPU cache).
_DEFAULT_CHUNK_ELEMENTS = 1 << 18


def _check_finite(distances: np.ndarray) -> None:
    """Raise ValueError if ``distances`` holds NaN or an infinity (one pass; the cause is
    looked up only on failure)."""
    if not np.isfinite(distances).all():
        if np.isnan(distances).any():
            raise ValueError("distmat contains NaN")
        raise ValueError("distmat contains an infinite value")



@dataclass
class _ClassGallery:
    """The gallery one class of queries ranks: its kept columns, grouped by identity.

    A class is the queries of the cameras that remove the same gallery cameras (SYSU-MM01:
    camera-3 queries without camera 2, every other query with the whole gallery); removed
    columns are simply not in it.
    """

    cols: np.ndarray  # (G_c,) original column of each grouped column (stable: index order kept)
    ident: np.ndarray  # (G_c,) identity code 0..P_c-1 of each grouped column
    num_ids: int  # P_c
    num_columns: int  # G, columns of the whole gallery (original column indices are below it)
    in_place: bool  # cols == arange(G): the distance rows need no column take
    q_start: np.ndarray  # (Q_c,) first grouped column of each query's identity
    q_count: np.ndarray  # (Q_c,) its number of columns (0: identity absent, query not valid)


def _class_gallery(
    q_pids: np.ndarray, g_pids: np.ndarray, kept: Optional[np.ndarray]
) -> _ClassGallery:
    """Group the kept gallery columns (``kept``: (G,) bool, None = all) by identity."""
    num_g = len(g_pids)
    cols = np.arange(num_g) if kept is None else np.flatnonzero(kept)
    cols = cols[np.argsort(g_pids[cols], kind="stable")]
    uniq, starts, counts = np.unique(g_pids[cols], return_index=True, return_counts=True)
    if len(uniq) == 0:  # every column removed for this class: no query of it is valid
        zeros = np.zeros(len(q_pids), dtype=np.intp)
        return _ClassGallery(cols, cols, 0, num_g, False, zeros, zeros)
    code = np.minimum(np.searchsorted(uniq, q_pids), len(uniq) - 1)
    present = uniq[code] == q_pids
    return _ClassGallery(
        cols=cols,
        ident=np.repeat(np.arange(len(uniq)), counts),
        num_ids=len(uniq),
        num_columns=num_g,
        in_place=len(cols) == num_g and bool(np.all(cols == np.arange(num_g))),
        q_start=np.where(present, starts[code], 0),
        q_count=np.where(present, counts[code], 0),
    )


def _order_key(
    bucket: np.ndarray, dist: np.ndarray, cols: Optional[np.ndarray], num_cols: int
) -> Optional[np.ndarray]:
    """One int64 key ordering (bucket, distance, column) as a lexsort would, or None.

    float32 distances map to order-preserving 32-bit integers (-0.0 == 0.0, as the
    comparisons of the reference sort treat them). ``cols=None``: the items already come
    in column order within each bucket, and a *stable* sort of the key keeps it, so the
    column needs no bits. None when the parts do not fit in 63 bits (float64 distances,
    huge chunks), and the caller lexsorts.
    """
    if dist.dtype != np.float32:
        return None
    col_bits = 0 if cols is None else max(int(num_cols - 1).bit_length(), 1)
    bucket_bits = max(int(bucket.max(initial=0)).bit_length(), 1)
    if 32 + col_bits + bucket_bits > 63:
        return None
    u = (dist + np.float32(0.0)).view(np.int32)  # + 0.0: -0.0 -> +0.0
    u ^= (u >> 31) & np.int32(0x7FFFFFFF)  # negative floats: order reversed -> signed-int order
    key = bucket.astype(np.int64) << (32 + col_bits)
    key |= (u.astype(np.int64) + (1 << 31)) << col_bits  # in [0, 2^32)
    if cols is not None:
        key |= cols
    return key


def _flat_buckets(
    dg: np.ndarray, lo: np.ndarray, scale: np.ndarray, num_buckets: int, row_start: np.ndarray
) -> np.ndarray:
    """(B, G) flat (row, bucket) index of every distance: ``row * num_buckets + bucket``.

    bucket = 1 + floor of the *level* ``(d - lo) * scale`` clipped to [-1, G + 1], a monotone
    map of the distance within a row: 0 holds only distances below ``lo`` (the row's first
    correct match), the first match itself is in bucket 1, and everything above
    ``lo + (G + 1) / scale`` shares the top bucket ``G + 2``. ``row_start``: (B,) int64
    ``row * num_buckets + 1``. The row offset is added in floating point when the flat
    indices are exact integers of the distance type (one integer pass less); rounding then
    moves a value by less than a bucket and keeps it in order and inside its row, so
    buckets stay monotone, which is all the ranking needs.
    """
    b, g = dg.shape
    # torch, not numpy, for these passes: numpy's row-broadcast and clip loops are about 3x slower
    level = torch.sub(torch.from_numpy(dg), torch.from_numpy(lo)[:, None])  # (B, G)
    level.mul_(torch.from_numpy(scale)[:, None])
    level.clamp_(-1.0, g + 1.0)
    if b * num_buckets < 2 ** (np.finfo(dg.dtype).nmant + 1):
        level.add_(torch.from_numpy(row_start.astype(dg.dtype))[:, None])  # in [row * nb, (row + 1) * nb - 1]
        return level.to(torch.int32).numpy()  # >= 0: truncation is floor; int32 halves the traffic
    flat = level.to(torch.int64)  # truncation toward zero: monotone as well
    flat.add_(torch.from_numpy(row_start)[:, None])
    return flat.numpy()


def _bincount(flat: np.ndarray, length: int) -> np.ndarray:
    """``np.bincount(flat, minlength=length)`` by torch: on int32 indices it measured 0.7 ns
    an index against numpy's 1.1-1.35 (numpy converts to int64 first), and it releases the
    GIL, so worker threads count at once (numpy's holds it)."""
    return torch.bincount(torch.from_numpy(flat), minlength=length).numpy()


def _lookup(table: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """``table[flat]`` by ``torch.index_select``: it takes int32 indices as they are (numpy's
    take converts them to int64 first; measured 0.7 against 1.0 ns an index) and releases
    the GIL."""
    return torch.index_select(torch.from_numpy(table), 0, torch.from_numpy(flat)).numpy()


@dataclass
class _ClassPlan:
    """A class's valid queries, in chunks, and what every chunk of them reuses.

    The correct matches of all its queries are listed row-major: query ``i`` owns entries
    ``match_off[i]:match_off[i + 1]`` of ``match_at``, its identity block in order.
    """

    gal: _ClassGallery
    rows: np.ndarray  # (Q,) distmat row of each valid query
    start: np.ndarray  # (Q,) first grouped column of its identity
    count: np.ndarray  # (Q,) its correct matches, >= 1
    match_at: np.ndarray  # (n,) flat index of each correct match in the class's (Q, G_c) block
    match_off: np.ndarray  # (Q + 1,) first entry of each query in match_at
    step: int  # queries per chunk
    num_buckets: int  # per row: G_c + 3 (0: below the first match, 1..G_c+1: the matches, G_c+2: the top)
    row_start: np.ndarray  # (step,) int64: row * num_buckets + 1, the flat offset of each chunk row

    @property
    def num_queries(self) -> int:
        return len(self.rows)


def _class_plan(
    rows: np.ndarray, start: np.ndarray, count: np.ndarray, gal: _ClassGallery, step: int
) -> _ClassPlan:
    """The plan of a class's valid queries (``rows``; ``start``, ``count``: their identity
    blocks in ``gal``, ``count >= 1``)."""
    g = len(gal.cols)
    match_off = np.concatenate(([0], np.cumsum(count)))
    owner = np.repeat(np.arange(len(rows)), count)  # (n,) query of each match
    slot = np.arange(match_off[-1]) - match_off[owner]  # (n,) 0..count-1 within the block
    match_at = owner * g + start[owner] + slot
    num_buckets = g + 3
    row_start = np.arange(step, dtype=np.int64) * num_buckets + 1
    return _ClassPlan(gal, rows, start, count, match_at, match_off, step, num_buckets, row_start)


@dataclass
class _ChunkRanks:
    """Exact 0-based ranks of a chunk's correct matches, in rank order within each row (rows
    in order, each with its ``count`` matches), and (SYSU) the identities ranked before
    each row's first match."""

    ranks: np.ndarray  # (n,)
    ids_before: Optional[np.ndarray]  # (B,) other identities with an image before the first match


def _rank_matches(dg: np.ndarray, plan: _ClassPlan, first_row: int, deduplicate: bool) -> _ChunkRanks:
    """Rank every correct match of a chunk of queries without sorting the rows.

    Args:
        dg: (B, G) distances of the plan's queries ``first_row:first_row + B``, columns
            those of ``plan.gal`` (kept, grouped by identity).
        deduplicate: also count the identities before each row's first match.

    Each row's distances go through a monotone map spanning the row's correct matches
    (:func:`_flat_buckets`): an image in a lower bucket always ranks before one in a
    higher bucket. One ``bincount`` over (row, bucket) tells how many images lie in the
    lower buckets of each bucket holding a correct match. Only the images sharing a
    bucket with a correct match (about one per match) are ordered exactly, by (distance,
    gallery index), in one small sort. Every rank is therefore exact, ties included;
    floating-point rounding in the map only changes how many images need the exact
    ordering, never a result. The images before the first match are those of bucket 0
    and those sorted before it in its bucket: their distinct identities are the
    de-duplicated rank (the query's own identity cannot be among them).
    """
    b, g = dg.shape  # (B, G)
    gal = plan.gal
    num_buckets = plan.num_buckets
    m0, m1 = plan.match_off[first_row], plan.match_off[first_row + b]
    m_at = plan.match_at[m0:m1] - first_row * g  # (n,) flat index of each correct match in dg
    m_first = plan.match_off[first_row:first_row + b] - m0  # (B,) each row's first entry in m_at
    m_val = dg.ravel()[m_at]
    lo = np.minimum.reduceat(m_val, m_first)  # (B,)
    hi = np.maximum.reduceat(m_val, m_first)
    width = np.subtract(hi, lo, dtype=np.float64)
    tiny = np.maximum(np.abs(lo) * 1e-6, 1e-30, dtype=np.float64)
    scale = (g / np.maximum(width, tiny)).astype(dg.dtype)
    flat = _flat_buckets(dg, lo, scale, num_buckets, plan.row_start[:b]).ravel()  # (B*G,)
    hist = _bincount(flat, b * num_buckets)

    shared = np.zeros(b * num_buckets, dtype=bool)
    shared[flat[m_at]] = True  # the matches' buckets
    if deduplicate:
        shared[::num_buckets] = True  # bucket 0 of each row: the images before the first match
    idx = np.flatnonzero(_lookup(shared, flat))  # images sharing a bucket with a correct match (+ bucket 0)
    f_bucket = flat[idx]
    f_row = idx // g
    if deduplicate:
        zero = f_bucket == f_row * num_buckets
        z_idx = idx[zero]
        keep = ~zero
        idx, f_bucket, f_row = idx[keep], f_bucket[keep], f_row[keep]
    f_gcol = idx - f_row * g
    f_dist = dg.ravel()[idx]
    f_col = None if gal.in_place else gal.cols[f_gcol]  # in place: idx is already in column order
    key = _order_key(f_bucket, f_dist, f_col, gal.num_columns)
    if key is not None:
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((f_gcol if f_col is None else f_col, f_dist, f_bucket))  # in place: gcol == col
    f_bucket, f_row, f_gcol = f_bucket[order], f_row[order], f_gcol[order]
    n = len(order)
    new_point = np.ones(n, dtype=bool)  # first image of each shared bucket (f_bucket is sorted)
    new_point[1:] = f_bucket[1:] != f_bucket[:-1]
    point_at = np.flatnonzero(new_point)
    point_of = np.cumsum(new_point) - 1  # (n,) the shared bucket of each image, 0..points-1

    # a correct match: inside the row's identity block
    slot_of = f_gcol - plan.start[first_row:first_row + b][f_row]
    is_match = (slot_of >= 0) & (slot_of < plan.count[first_row:first_row + b][f_row])
    at = np.flatnonzero(is_match)  # (n_matches,) sorted index of each match, rows in order
    m_point = point_of[at]
    # Rank = the images in lower buckets of the same row (the images in lower flat buckets,
    # sums of hist between consecutive shared buckets, minus g per earlier row: each holds g)
    # + the images before it in its bucket.
    seg = np.add.reduceat(hist, np.concatenate(([0], f_bucket[point_at])))[:-1]
    ranks = np.cumsum(seg)[m_point] - f_row[at] * g + (at - point_at[m_point])
    ids_before = None
    if deduplicate:
        mark = np.zeros(b * gal.num_ids, dtype=bool)
        z_row = z_idx // g
        mark[z_row * gal.num_ids + gal.ident[z_idx - z_row * g]] = True
        # the images sorted before each row's first match in its bucket: a run of positions
        first_at = at[m_first]  # (B,)
        run_start = point_at[point_of[first_at]]
        run_len = first_at - run_start
        if run_len.any():
            pre = np.repeat(first_at - np.cumsum(run_len), run_len) + np.arange(run_len.sum())
            mark[f_row[pre] * gal.num_ids + gal.ident[f_gcol[pre]]] = True
        ids_before = mark.reshape(b, gal.num_ids).sum(axis=1)
    return _ChunkRanks(ranks=ranks, ids_before=ids_before)


@contextmanager
def _single_threaded_torch() -> Iterator[None]:
    """torch's intra-op threads set to 1 for the block, then restored (a process-wide setting)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _resolve_workers(workers: Optional[int]) -> int:
    if workers is None:
        return 1
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return int(workers)


def _class_metrics(
    plan: _ClassPlan, parts: Sequence[_ChunkRanks], max_rank: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AP and INP of each query of a class, and its CMC hit counts (standard, de-duplicated),
    from the ranks of its chunks (in order)."""
    ranks = np.concatenate([p.ranks for p in parts])  # (n,) row by row, ascending in each row
    first, count = plan.match_off[:-1], plan.count
    kth = np.arange(len(ranks)) - np.repeat(first, count) + 1  # 1-based order among the matches
    ap = np.add.reduceat(kth / (ranks + 1.0), first) / count  # (Q,) per query: summed once at the
    inp = count / (ranks[plan.match_off[1:] - 1] + 1.0)  # end, so neither the chunks nor the workers change a bit
    std_hits = np.bincount(np.minimum(ranks[first], max_rank), minlength=max_rank + 1)
    dedup_hits = np.zeros(max_rank + 1, dtype=np.int64)
    if parts[0].ids_before is not None:
        ids_before = np.concatenate([p.ids_before for p in parts])
        dedup_hits = np.bincount(np.minimum(ids_before, max_rank), minlength=max_rank + 1)
    return ap, inp, std_hits, dedup_hits



class RankSums(NamedTuple):
    """What the metrics are made of, summed over the valid queries in query order."""

    ap_sum: float
    inp_sum: float
    num_valid: int
    std_hits: np.ndarray  # (max_rank + 1,) queries whose first match is at each rank (last: beyond)
    dedup_hits: np.ndarray  # the same for the identity-de-duplicated rank (zeros unless deduplicate)


def rank_sums(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: Optional[np.ndarray],
              g_camids: Optional[np.ndarray], pairs: List[Tuple[int, int]], max_rank: int,
              deduplicate_cmc: bool, chunk_size: Optional[int], workers: Optional[int]) -> RankSums:
    """AP, INP and CMC hit sums of a validated distance matrix (finiteness checked here,
    chunk by chunk); the arguments are those of :func:`vireid.evaluation.metrics.rank_metrics`."""
    num_q = distmat.shape[0]
    workers = _resolve_workers(workers)
    # Under threads, chunks twice as large: fewer small steps queue for the GIL (2 threads,
    # multi-shot SYSU-MM01: 0.84x the time of 256k-distance chunks; one thread: 1.07x).
    budget = _DEFAULT_CHUNK_ELEMENTS * (2 if workers > 1 else 1)
    # Query classes: the queries of one camera remove the same gallery columns.
    classes = [(np.ones(num_q, dtype=bool), None)]
    for q_cam in sorted({q for q, _ in pairs}):
        removed = np.isin(g_camids, [g for q, g in pairs if q == q_cam])
        in_class = q_camids == q_cam
        classes[0][0][in_class] = False
        classes.append((in_class, ~removed))
    plans, jobs = [], []
    skipped = np.ones(num_q, dtype=bool)  # rows no chunk reads (their finiteness is checked here)
    for in_class, kept in classes:
        rows_all = np.flatnonzero(in_class)
        gal = _class_gallery(q_pids[rows_all], g_pids, kept)
        valid = gal.q_count > 0  # a query without a correct match left is skipped for every metric
        if not valid.any():
            continue
        rows_all = rows_all[valid]
        skipped[rows_all] = False
        step = chunk_size or max(1, budget // max(len(gal.cols), 1))
        plan = _class_plan(rows_all, gal.q_start[valid], gal.q_count[valid], gal, min(step, len(rows_all)))
        plans.append(plan)
        jobs += [(plan, lo) for lo in range(0, plan.num_queries, plan.step)]

    _check_finite(distmat[skipped])

    def run(job) -> _ChunkRanks:
        plan, lo = job
        dg = np.take(distmat, plan.rows[lo:lo + plan.step], axis=0)  # (B, G) whole rows: every column checked
        _check_finite(dg)
        if not plan.gal.in_place:
            dg = np.take(dg, plan.gal.cols, axis=1)  # (B, G_c) kept columns, grouped by identity
        return _rank_matches(dg, plan, lo, deduplicate_cmc)

    workers = max(1, min(workers, len(jobs)))
    with _single_threaded_torch():  # one core per worker: torch's own threads would add more
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                ranked = list(pool.map(run, jobs))  # in job order: sums independent of workers
        else:
            ranked = [run(job) for job in jobs]
    parts = [
        _class_metrics(plan, [r for (p, _), r in zip(jobs, ranked) if p is plan], max_rank)
        for plan in plans
    ]
    ap_sum = float(np.sum(np.concatenate([p[0] for p in parts]))) if parts else 0.0
    inp_sum = float(np.sum(np.concatenate([p[1] for p in parts]))) if parts else 0.0
    num_valid = int(sum(plan.num_queries for plan in plans))
    zeros = np.zeros(max_rank + 1, dtype=np.int64)
    cmc_std_hits = sum((p[2] for p in parts), zeros)
    cmc_dedup_hits = sum((p[3] for p in parts), zeros)

    return RankSums(ap_sum, inp_sum, num_valid, cmc_std_hits, cmc_dedup_hits)
