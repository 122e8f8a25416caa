"""Vectorised ranking metrics of the VI-ReID literature (CMC, mAP, mINP).

The numbers are those of the public Cross-Modal-Re-ID-baseline ``eval_metrics.py``
(AGW, DDAG and the paper report with it), reproduced to 1e-6 on
``shared/golden/eval_*.npz``:

* SYSU-MM01 (:func:`sysu_metrics`): for a query of camera 3, gallery images of
  camera 2 are removed from its ranking (both are indoor cameras of the same
  room). The reported CMC de-duplicates the ranked gallery identities, keeping
  each identity's first occurrence, before the cumulative match; the standard
  CMC (``cmc_standard``), mAP and mINP keep repeated identities.
* RegDB (:func:`regdb_metrics`): nothing is removed and the reported CMC is the
  standard one.
* mAP: mean over valid queries of the average precision over *all* correct
  matches. mINP (Ye et al., "Deep Learning for Person Re-identification: A
  Survey and Outlook"): mean of ``num_correct / (position of the last correct
  match)``, positions 1-based.
* Queries whose identity does not occur in their (filtered) gallery are skipped;
  every curve is divided by the number of valid queries.
* The ranking is a *stable* sort of each distance row: of two gallery images at
  the same distance the one with the lower gallery index ranks first.
* If the gallery has fewer than ``max_rank`` images the curves stop at the
  gallery size, as in the reference; each query's cumulative match is taken over
  its whole ranked list, so a de-duplicated or filtered list shorter than
  ``max_rank`` simply keeps its last value.

Implementation: no Python loop per query and no sort of a distance row. Queries
go in chunks (about 256k distances each) of one camera class. In a chunk, each
row's distances pass through a monotone map spanning the row's correct matches
whose integer part is a bucket (about one image per bucket), one ``bincount``
counts the images of every (row, bucket), and only the images sharing a bucket
with a correct match are ordered exactly, by (distance, gallery index). That
gives the exact rank of every correct match (ties included) in a few passes over
the chunk; AP, INP and the standard CMC follow. The de-duplicated rank is the
number of identities whose lowest mapped value is below the first correct
match's, with equal values decided exactly. Chunks can run on several threads
(``workers``) and are summed in a fixed order, so results do not depend on it. The readable per-query version is
:mod:`vireid.evaluation.reference`; ``benchmarks/bench_eval_metrics.py`` times both.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "RankMetrics",
    "TrialSummary",
    "SYSU_EXCLUDED_CAMERA_PAIRS",
    "rank_metrics",
    "sysu_metrics",
    "regdb_metrics",
    "aggregate_trials",
]

#: (query camera, gallery camera) pairs removed from a query's ranking on SYSU-MM01.
SYSU_EXCLUDED_CAMERA_PAIRS: Tuple[Tuple[int, int], ...] = ((3, 2),)

#: Distances per chunk of queries (the chunk's working arrays stay in the CPU cache).
_DEFAULT_CHUNK_ELEMENTS = 1 << 18


@dataclass(frozen=True)
class RankMetrics:
    """Metrics of one evaluation (one trial).

    Attributes:
        cmc: the CMC curve the protocol reports, ranks 1..len(cmc) (SYSU: identities
            de-duplicated; RegDB: standard), fractions in [0, 1].
        cmc_standard: the standard CMC (repeated identities kept).
        mAP: mean average precision, in [0, 1].
        mINP: mean inverse negative penalty, in [0, 1].
        num_valid_queries: queries whose identity occurs in their gallery.
        num_queries: all queries, valid or not.
    """

    cmc: np.ndarray
    cmc_standard: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    num_queries: int

    def rank(self, k: int) -> float:
        """Rank-``k`` accuracy of the reported curve (``k`` is 1-based)."""
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"k must be in 1..{len(self.cmc)}, got {k}")
        return float(self.cmc[k - 1])


@dataclass(frozen=True)
class TrialSummary:
    """Mean and standard deviation over trials (``std`` with ddof=0, as ``np.std``)."""

    mean: Mapping[str, float]
    std: Mapping[str, float]
    num_trials: int
    cmc_mean: np.ndarray


def _validate(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: Optional[np.ndarray],
    g_camids: Optional[np.ndarray],
):
    """Check shapes and values; return numpy arrays (distmat as float32 or float64)."""
    distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query x num_gallery), got shape {distmat.shape}")
    if not (np.issubdtype(distmat.dtype, np.floating) or np.issubdtype(distmat.dtype, np.integer)):
        raise ValueError(f"distmat must hold real numbers, got dtype {distmat.dtype}")
    num_q, num_g = distmat.shape
    if num_q == 0:
        raise ValueError("distmat has no query row: the query set is empty")
    if num_g == 0:
        raise ValueError("distmat has no gallery column: the gallery is empty")
    arrays = {"q_pids": (q_pids, num_q), "g_pids": (g_pids, num_g)}
    if q_camids is not None:
        arrays["q_camids"] = (q_camids, num_q)
    if g_camids is not None:
        arrays["g_camids"] = (g_camids, num_g)
    out = {}
    for name, (arr, expected) in arrays.items():
        arr = np.asarray(arr)
        if arr.ndim != 1 or arr.shape[0] != expected:
            raise ValueError(
                f"{name} must be 1-D of length {expected} to match distmat {distmat.shape}, "
                f"got shape {arr.shape}"
            )
        out[name] = arr
    if distmat.dtype in (np.float16, np.float32):
        distmat = distmat.astype(np.float32, copy=False)
    else:
        distmat = distmat.astype(np.float64, copy=False)
    if not np.isfinite(distmat).all():  # one pass; the cause is looked up only on failure
        if np.isnan(distmat).any():
            raise ValueError("distmat contains NaN")
        raise ValueError("distmat contains an infinite value")
    return distmat, out["q_pids"], out["g_pids"], out.get("q_camids"), out.get("g_camids")


def _effective_max_rank(max_rank: int, num_g: int) -> int:
    """``max_rank`` cut to the gallery size, as the reference does."""
    if int(max_rank) != max_rank or max_rank < 1:
        raise ValueError(f"max_rank must be a positive integer, got {max_rank!r}")
    if num_g < max_rank:
        logger.warning("gallery has only %d images: CMC stops at rank %d", num_g, num_g)
        return int(num_g)
    return int(max_rank)


def _precedes(d: np.ndarray, t: np.ndarray, cols: np.ndarray, t_cols: np.ndarray) -> np.ndarray:
    """Exact ranking order, broadcasting: (distance, gallery index) (d, cols) before (t, t_cols)."""
    return (d < t) | ((d == t) & (cols < t_cols))


@dataclass
class _Gallery:
    """Gallery columns grouped by identity, and what each query needs of them."""

    perm: np.ndarray  # (G,) original column of each grouped column (stable: index order kept)
    starts: np.ndarray  # (P,) first grouped column of each identity
    pad_cols: Optional[np.ndarray]  # (W, P) each identity's columns, its first repeated; or None
    q_start: np.ndarray  # (Q,) first grouped column of the query's identity
    q_count: np.ndarray  # (Q,) its number of columns (0: identity absent)
    q_class: np.ndarray  # (Q,) exclusion class: 0 keeps every column
    excluded: np.ndarray  # (classes, G) bool, in grouped order


def _group_gallery(
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: Optional[np.ndarray],
    g_camids: Optional[np.ndarray],
    pairs: Sequence[Tuple[int, int]],
) -> _Gallery:
    perm = np.argsort(g_pids, kind="stable")
    uniq, starts, counts = np.unique(g_pids[perm], return_index=True, return_counts=True)
    code = np.minimum(np.searchsorted(uniq, q_pids), len(uniq) - 1)
    in_gallery = uniq[code] == q_pids
    excluded_cams = sorted({q_cam for q_cam, _ in pairs})
    excluded = np.zeros((len(excluded_cams) + 1, len(g_pids)), dtype=bool)
    q_class = np.zeros(len(q_pids), dtype=np.intp)
    for q_cam, g_cam in pairs:
        excluded[excluded_cams.index(q_cam) + 1] |= g_camids[perm] == g_cam
    for i, q_cam in enumerate(excluded_cams):
        q_class[q_camids == q_cam] = i + 1
    pad_cols = None
    if len(g_pids) < 8 * len(uniq):
        # Few images per identity: a (W, P) gather and a min over W beats reduceat,
        # whose cost per (row, identity) segment dominates when segments are short.
        k = np.arange(int(counts.max()))[:, None]
        pad_cols = starts[None, :] + np.minimum(k, counts[None, :] - 1)
    return _Gallery(
        perm=perm,
        starts=starts,
        pad_cols=pad_cols,
        q_start=np.where(in_gallery, starts[code], 0),
        q_count=np.where(in_gallery, counts[code], 0),
        q_class=q_class,
        excluded=excluded,
    )


@dataclass
class _ChunkRanks:
    """Exact 0-based ranks of a chunk's correct matches, in rank order within each row."""

    rows: np.ndarray  # (n,) chunk row of each correct match, non-decreasing
    ranks: np.ndarray  # (n,) its rank among the row's kept gallery images
    dist: np.ndarray  # (n,) its distance
    cols: np.ndarray  # (n,) its original gallery column
    gcols: np.ndarray  # (n,) its identity-grouped column
    level: np.ndarray  # (B, G) the monotone level of every distance (see _rank_matches)


def _order_key(
    bucket: np.ndarray, dist: np.ndarray, cols: np.ndarray, num_cols: int
) -> Optional[np.ndarray]:
    """One int64 key ordering (bucket, distance, column) as a lexsort would, or None.

    float32 distances map to order-preserving 32-bit integers (-0.0 == 0.0, as the
    comparisons of the reference sort treat them); None when the three do not fit
    in 63 bits (float64 distances, huge chunks), and the caller lexsorts.
    """
    if dist.dtype != np.float32:
        return None
    col_bits = max(int(num_cols - 1).bit_length(), 1)
    bucket_bits = max(int(bucket.max(initial=0)).bit_length(), 1)
    if 32 + col_bits + bucket_bits > 63:
        return None
    d = dist + np.float32(0.0)  # -0.0 -> +0.0
    u = d.view(np.int32).astype(np.int64)
    u = np.where(u < 0, np.int64(-(1 << 31)) - u - 1, u) + (1 << 31)  # monotone, in [0, 2^32)
    return (bucket.astype(np.int64) << (32 + col_bits)) | (u << col_bits) | cols


def _rank_matches(
    dg: np.ndarray,
    pos: np.ndarray,
    valid_slot: np.ndarray,
    perm: np.ndarray,
    penalty: Optional[np.ndarray],
) -> _ChunkRanks:
    """Rank every correct match of a chunk of queries without sorting the rows.

    Args:
        dg: (B, G) distances, gallery columns grouped by identity (read only).
        pos, valid_slot: (B, M) grouped columns of each row's correct matches and
            which of them count (in range and not excluded).
        perm: (G,) original gallery column of each grouped column (tie order).
        penalty: (G,) 0 for kept and +inf for excluded gallery images, or None.

    Each row's distances go through a monotone map spanning the row's correct
    matches (shift, scale to G units, clip: the *level*), whose integer part is a
    bucket: an image in a lower bucket always ranks before one in a higher bucket.
    One ``bincount`` over (row, bucket) then tells how many images lie in the lower
    buckets of each bucket holding a correct match. Only the images sharing a bucket
    with a correct match (about one per match) are ordered exactly, by (distance,
    gallery index), in one small sort. Every rank is therefore exact, ties included;
    floating-point rounding in the map only changes how many images need the exact
    ordering, never a result. Excluded images (penalty) land in the top bucket,
    above every correct match.
    """
    b, g = dg.shape  # (B, G)
    top = g + 1.0  # correct matches map to at most g (times 1 + a few ulp): never top
    num_buckets = g + 3  # 0: below the first match, 1..g+1: the matches, g+2: the top
    m_val = np.take_along_axis(dg, pos, axis=1)  # (B, M)
    lo = np.where(valid_slot, m_val, np.inf).min(axis=1)  # (B,) every row has a valid slot
    hi = np.where(valid_slot, m_val, -np.inf).max(axis=1)
    width = hi.astype(np.float64) - lo
    tiny = np.maximum(np.abs(lo).astype(np.float64) * 1e-6, 1e-30)
    scale = (g / np.maximum(width, tiny)).astype(dg.dtype)

    level = np.subtract(dg, lo[:, None])  # (B, G), monotone in the distance within a row
    if penalty is not None:
        level += penalty  # excluded: +inf -> the top bucket
    np.multiply(level, scale[:, None], out=level)
    np.clip(level, -1.0, top, out=level)
    bucket = level.astype(np.intp)  # truncation toward zero: monotone as well
    bucket += (np.arange(b) * num_buckets + 1)[:, None]  # (row, bucket) -> one flat index
    flat = bucket.ravel()
    hist = np.bincount(flat, minlength=b * num_buckets)

    match_bucket = np.take_along_axis(bucket, pos, axis=1)[valid_slot]
    shared = np.zeros(b * num_buckets, dtype=bool)
    shared[match_bucket] = True
    idx = np.flatnonzero(shared[flat])  # images sharing a bucket with a correct match
    f_bucket = flat[idx]
    f_dist = dg.ravel()[idx] if dg.flags.c_contiguous else dg[idx // g, idx % g]
    f_row = idx // g
    f_gcol = idx - f_row * g
    f_col = perm[f_gcol]
    key = _order_key(f_bucket, f_dist, f_col, len(perm))
    order = np.argsort(key) if key is not None else np.lexsort((f_col, f_dist, f_bucket))
    f_bucket, f_row, f_gcol = f_bucket[order], f_row[order], f_gcol[order]
    group = np.searchsorted(f_bucket, f_bucket, side="left")
    within = np.arange(len(order)) - group  # rank inside the bucket

    # Images in lower buckets of the same row: every row holds exactly g images, so
    # that is the count in lower flat buckets minus g per earlier row; the counts come
    # from summing hist between consecutive shared buckets (f_bucket is sorted).
    new_point = np.ones(len(f_bucket), dtype=bool)
    new_point[1:] = f_bucket[1:] != f_bucket[:-1]
    points = f_bucket[new_point]
    seg = np.add.reduceat(hist, np.concatenate(([0], points)))[:-1]
    below = np.cumsum(seg)  # images in flat buckets < each point
    lower = below[np.cumsum(new_point) - 1] - f_row * g

    # a correct match: inside the row's identity block, at a slot that counts
    slot_of = f_gcol - pos[f_row, 0]
    in_block = (slot_of >= 0) & (slot_of < valid_slot.shape[1])
    is_match = in_block & valid_slot[f_row, np.where(in_block, slot_of, 0)]
    return _ChunkRanks(
        rows=f_row[is_match],
        ranks=(lower + within)[is_match],
        dist=f_dist[order][is_match],
        cols=f_col[order][is_match],
        gcols=f_gcol[is_match],
        level=level,
    )


def _identities_before(
    dg: np.ndarray,
    r: _ChunkRanks,
    first: np.ndarray,
    own: np.ndarray,
    starts: np.ndarray,
    pad_cols: Optional[np.ndarray],
    perm: np.ndarray,
    excluded: Optional[np.ndarray],
) -> np.ndarray:
    """Identities other than the query's with a kept image ranked before its first match.

    ``first``: (B,) index into ``r`` of each row's first correct match; ``excluded``:
    (G,) bool, or None. The level of :func:`_rank_matches` is monotone in the
    distance, so an identity whose lowest level is below the first match's level
    has an image before it; one whose lowest level equals it (a tie, or distances
    closer than the map resolves) is decided exactly, by (distance, gallery index).
    """
    rows = np.arange(len(first))
    if pad_cols is not None:
        nearest = r.level[:, pad_cols].min(axis=1)  # (B, W, P) -> (B, P)
    else:
        nearest = np.minimum.reduceat(r.level, starts, axis=1)  # (B, P): lowest level per identity
    t_first = r.level[rows, r.gcols[first]]
    ids_before = (nearest < t_first[:, None]).sum(axis=1)
    tie = nearest == t_first[:, None]
    tie[rows, own] = False
    tied = np.flatnonzero(tie.any(axis=1))
    if len(tied):
        d_first, c_first = r.dist[first][tied, None], r.cols[first][tied, None]
        before = _precedes(dg[tied], d_first, perm[None, :], c_first)
        if excluded is not None:
            before &= ~excluded[None, :]
        ids_before[tied] = np.logical_or.reduceat(before, starts, axis=1).sum(axis=1)
    return ids_before


def _resolve_workers(workers: Optional[int], num_jobs: int) -> int:
    if workers is None:
        workers = 1
    elif int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return int(max(1, min(workers, num_jobs)))


def _chunk_metrics(
    dg: np.ndarray,
    pos: np.ndarray,
    valid_slot: np.ndarray,
    gal: _Gallery,
    excluded: Optional[np.ndarray],
    penalty: Optional[np.ndarray],
    max_rank: int,
    deduplicate_cmc: bool,
) -> Tuple[float, float, int, np.ndarray, np.ndarray]:
    """AP sum, INP sum, valid queries and CMC hit counts of one chunk of valid queries;
    ``excluded`` (G,) bool and ``penalty`` (G,) 0 / +inf mark the class's removed images."""
    b = len(dg)
    r = _rank_matches(dg, pos, valid_slot, gal.perm, penalty)
    first = np.searchsorted(r.rows, np.arange(b), side="left")  # (B,) into r
    last = np.searchsorted(r.rows, np.arange(b), side="right") - 1
    num_rel = (last - first + 1).astype(np.float64)
    kth = np.arange(len(r.rows)) - first[r.rows] + 1  # 1-based order among the matches
    ap_rows = np.bincount(r.rows, weights=kth / (r.ranks + 1.0), minlength=b)
    ap_sum = float(np.sum(ap_rows / num_rel))
    inp_sum = float(np.sum(num_rel / (r.ranks[last] + 1.0)))
    std_hits = np.bincount(np.minimum(r.ranks[first], max_rank), minlength=max_rank + 1)
    dedup_hits = np.zeros(max_rank + 1, dtype=np.int64)
    if deduplicate_cmc:
        own = np.searchsorted(gal.starts, pos[:, 0], side="right") - 1
        ids_before = _identities_before(
            dg, r, first, own, gal.starts, gal.pad_cols, gal.perm, excluded
        )
        dedup_hits = np.bincount(np.minimum(ids_before, max_rank), minlength=max_rank + 1)
    return ap_sum, inp_sum, b, std_hits, dedup_hits


def rank_metrics(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: Optional[np.ndarray] = None,
    g_camids: Optional[np.ndarray] = None,
    max_rank: int = 20,
    excluded_camera_pairs: Iterable[Tuple[int, int]] = (),
    deduplicate_cmc: bool = False,
    chunk_size: Optional[int] = None,
    workers: Optional[int] = None,
) -> RankMetrics:
    """CMC, mAP and mINP of a query x gallery distance matrix (smaller = closer).

    Args:
        distmat: (num_query, num_gallery) finite distances. float16/float32 are
            ranked as float32, anything else as float64.
        q_pids, g_pids: identities of the query rows and gallery columns.
        q_camids, g_camids: cameras; needed only with ``excluded_camera_pairs``.
        max_rank: length of the CMC curves (cut to the gallery size).
        excluded_camera_pairs: ``(query camera, gallery camera)`` pairs whose gallery
            images are removed from that query's ranking.
        deduplicate_cmc: report (as ``cmc``) the identity-de-duplicated CMC instead of
            the standard one.
        chunk_size: queries per chunk (default: about 256k distances a chunk, which
            keeps a chunk's working arrays in the CPU's cache).
        workers: threads working on chunks at once (default 1; numpy releases the GIL
            in only part of each chunk: on an idle 2-core machine 2 threads made
            multi-shot SYSU-MM01 13 % faster and single-shot no faster). The result
            does not depend on it: chunks are summed in the same order.

    Raises:
        ValueError: shapes that do not match, an empty query set or gallery, NaN or
            infinite distances, or no query with a correct match in its gallery.
    """
    distmat, q_pids, g_pids, q_camids, g_camids = _validate(
        distmat, q_pids, g_pids, q_camids, g_camids
    )
    pairs = [(int(q), int(g)) for q, g in excluded_camera_pairs]
    if pairs and (q_camids is None or g_camids is None):
        raise ValueError("excluded_camera_pairs needs q_camids and g_camids")
    num_q, num_g = distmat.shape
    max_rank = _effective_max_rank(max_rank, num_g)
    if chunk_size is None:
        chunk_size = max(1, _DEFAULT_CHUNK_ELEMENTS // num_g)
    elif int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")

    gal = _group_gallery(q_pids, g_pids, q_camids, g_camids, pairs)
    grouped = bool(np.all(gal.perm[1:] > gal.perm[:-1]))  # gallery already ordered by identity
    max_pos = max(int(gal.q_count.max()), 1)
    slot = np.arange(max_pos)

    # Chunks of queries of one exclusion class (each class removes the same columns).
    jobs = []
    for cls, excluded in enumerate(gal.excluded):
        rows_all = np.flatnonzero(gal.q_class == cls)
        pos_all = gal.q_start[rows_all, None] + slot[None, :]  # (Q_c, M) the identity's columns
        in_range = slot[None, :] < gal.q_count[rows_all, None]
        pos_all = np.where(in_range, pos_all, gal.q_start[rows_all, None])
        valid_all = in_range & ~excluded[pos_all]
        # a query without a kept correct match is not valid: skipped for every metric
        keep = valid_all.any(axis=1)
        rows_all, pos_all, valid_all = rows_all[keep], pos_all[keep], valid_all[keep]
        excl = excluded if excluded.any() else None
        penalty = None if excl is None else np.where(excl, np.inf, 0).astype(distmat.dtype)  # once per class
        for lo in range(0, len(rows_all), chunk_size):
            sl = slice(lo, lo + chunk_size)
            jobs.append((rows_all[sl], pos_all[sl], valid_all[sl], excl, penalty))

    def run(job) -> Tuple[float, float, int, np.ndarray, np.ndarray]:
        rows, pos, valid_slot, excl, penalty = job
        dg = np.take(distmat, rows, axis=0)
        if not grouped:
            dg = np.take(dg, gal.perm, axis=1)  # (B, G) grouped by identity
        return _chunk_metrics(dg, pos, valid_slot, gal, excl, penalty, max_rank, deduplicate_cmc)

    workers = _resolve_workers(workers, len(jobs))
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(run, jobs))  # in job order: sums independent of workers
    else:
        parts = [run(job) for job in jobs]
    ap_sum = float(sum(p[0] for p in parts))
    inp_sum = float(sum(p[1] for p in parts))
    num_valid = int(sum(p[2] for p in parts))
    zeros = np.zeros(max_rank + 1, dtype=np.int64)
    cmc_std_hits = sum((p[3] for p in parts), zeros)
    cmc_dedup_hits = sum((p[4] for p in parts), zeros)

    if num_valid == 0:
        raise ValueError("no valid query: no query identity occurs in its gallery")
    cmc_standard = np.cumsum(cmc_std_hits[:max_rank]) / num_valid
    cmc_dedup = np.cumsum(cmc_dedup_hits[:max_rank]) / num_valid
    return RankMetrics(
        cmc=cmc_dedup if deduplicate_cmc else cmc_standard,
        cmc_standard=cmc_standard,
        mAP=ap_sum / num_valid,
        mINP=inp_sum / num_valid,
        num_valid_queries=num_valid,
        num_queries=num_q,
    )


def sysu_metrics(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
    excluded_camera_pairs: Iterable[Tuple[int, int]] = SYSU_EXCLUDED_CAMERA_PAIRS,
    chunk_size: Optional[int] = None,
    workers: Optional[int] = None,
) -> RankMetrics:
    """SYSU-MM01 metrics: camera-2 gallery dropped for camera-3 queries, ``cmc``
    de-duplicated by identity, ``cmc_standard`` not. See :func:`rank_metrics`."""
    if q_camids is None or g_camids is None:
        raise ValueError("sysu_metrics needs q_camids and g_camids")
    return rank_metrics(
        distmat,
        q_pids,
        g_pids,
        q_camids,
        g_camids,
        max_rank=max_rank,
        excluded_camera_pairs=excluded_camera_pairs,
        deduplicate_cmc=True,
        chunk_size=chunk_size,
        workers=workers,
    )


def regdb_metrics(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    max_rank: int = 20,
    chunk_size: Optional[int] = None,
    workers: Optional[int] = None,
) -> RankMetrics:
    """RegDB metrics: nothing removed, standard CMC (``cmc`` == ``cmc_standard``)."""
    return rank_metrics(
        distmat, q_pids, g_pids, max_rank=max_rank, deduplicate_cmc=False, chunk_size=chunk_size,
        workers=workers,
    )


def aggregate_trials(
    results: Sequence[RankMetrics], ranks: Sequence[int] = (1, 5, 10, 20)
) -> TrialSummary:
    """Mean and std (ddof=0) over trials of Rank-k (keys ``R1``, ``R5``...), mAP and mINP.

    A CMC curve stops at its gallery's size (small galleries: the demo data, multi-shot
    galleries of different sizes); past its end the cumulative match keeps its last
    value, since no further gallery image can change it. Curves are extended so before
    the ranks are read and the mean curve is taken.

    Raises:
        ValueError: no result, or a rank below 1.
    """
    results = list(results)
    if not results:
        raise ValueError("results is empty: nothing to aggregate")
    for k in ranks:
        if k < 1:
            raise ValueError(f"ranks: {k} is below 1")
    length = max([len(r.cmc) for r in results] + [max(ranks, default=1)])

    def extended(cmc: np.ndarray) -> np.ndarray:
        return np.concatenate([cmc, np.full(length - len(cmc), cmc[-1])])

    curves = [extended(np.asarray(r.cmc, dtype=np.float64)) for r in results]
    table = {f"R{k}": np.array([c[k - 1] for c in curves]) for k in ranks}
    table["mAP"] = np.array([r.mAP for r in results])
    table["mINP"] = np.array([r.mINP for r in results])
    return TrialSummary(
        mean={name: float(v.mean()) for name, v in table.items()},
        std={name: float(v.std()) for name, v in table.items()},
        num_trials=len(results),
        cmc_mean=np.mean(curves, axis=0),
    )
