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

Implementation: no Python loop per query and no per-row sort. For a chunk of
queries, the rank of each correct match is the number of kept gallery images at a
smaller distance, computed by broadcast comparison against the (few) correct
matches of each query; the de-duplicated rank is the number of identities whose
nearest kept image is closer than the first correct match (gallery columns are
grouped by identity and padded, so that is one ``min`` over a small axis). When
a distance ties with a correct match in a chunk, that chunk is redone with the
exact (distance, gallery index) order. The readable per-query version is
:mod:`vireid.evaluation.reference`; ``benchmarks/bench_eval_metrics.py`` times both.
"""
from __future__ import annotations

import logging
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

#: Bound on the number of elements of the per-chunk comparison tensor.
_DEFAULT_CHUNK_ELEMENTS = 1 << 20


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
    if np.isnan(distmat).any():
        raise ValueError("distmat contains NaN")
    if np.isinf(distmat).any():
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
        chunk_size: queries per chunk (default: bounded by about 1M compared pairs).

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

    # Gallery columns grouped by identity (stable, so each group keeps index order).
    perm = np.argsort(g_pids, kind="stable")
    g_sorted = g_pids[perm]
    uniq, starts, counts = np.unique(g_sorted, return_index=True, return_counts=True)
    q_code = np.searchsorted(uniq, q_pids)
    q_code = np.minimum(q_code, len(uniq) - 1)
    in_gallery = uniq[q_code] == q_pids
    q_start = np.where(in_gallery, starts[q_code], 0)
    q_count = np.where(in_gallery, counts[q_code], 0)
    max_pos = max(int(q_count.max()), 1)

    # Excluded gallery columns per query camera (in the identity-grouped column order):
    # row 0 of the table excludes nothing, row i+1 serves query camera excluded_cams[i].
    excluded_cams = sorted({q_cam for q_cam, _ in pairs})
    # One extra column, always excluded (distance +inf), pads identities in pad_cols.
    excluded_table = np.zeros((len(excluded_cams) + 1, num_g + 1), dtype=bool)
    excluded_table[:, num_g] = True
    for q_cam, g_cam in pairs:
        excluded_table[excluded_cams.index(q_cam) + 1, :num_g] |= g_camids[perm] == g_cam
    q_excl_row = np.zeros(num_q, dtype=np.intp)
    for i, q_cam in enumerate(excluded_cams):
        q_excl_row[q_camids == q_cam] = i + 1

    # pad_cols[j, c]: j-th column of identity c (or the padding column), so that the
    # minimum over axis 1 of d[:, pad_cols] is each identity's nearest kept image.
    width = int(counts.max())
    pad_cols = starts[None, :] + np.arange(width)[:, None]
    pad_cols = np.where(np.arange(width)[:, None] < counts[None, :], pad_cols, num_g)
    perm_ext = np.append(perm, perm[0])

    if chunk_size is None:
        chunk_size = max(1, _DEFAULT_CHUNK_ELEMENTS // (max_pos * num_g))
    elif int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")

    slot = np.arange(max_pos)
    cmc_std_hits = np.zeros(max_rank, dtype=np.int64)
    cmc_dedup_hits = np.zeros(max_rank, dtype=np.int64)
    ap_sum = 0.0
    inp_sum = 0.0
    num_valid = 0

    for lo in range(0, num_q, chunk_size):
        hi = min(lo + chunk_size, num_q)
        rows = distmat[lo:hi][:, perm_ext]
        b = hi - lo
        excluded = excluded_table[q_excl_row[lo:hi]]

        # Positive slots: the query identity's columns, padded to max_pos.
        pos_cols = q_start[lo:hi, None] + slot[None, :]
        in_range = slot[None, :] < q_count[lo:hi, None]
        pos_cols = np.where(in_range, pos_cols, 0)
        valid_slot = in_range & ~np.take_along_axis(excluded, pos_cols, axis=1)

        d = np.where(excluded, np.inf, rows)  # excluded images never precede a match
        t_val = np.take_along_axis(d, pos_cols, axis=1)
        before = d[:, None, :] < t_val[:, :, None]
        # 0-based rank among kept images of each correct match, if no distance ties it.
        ranks = before.view(np.uint8).sum(axis=2, dtype=np.int64)
        at_most = (d[:, None, :] <= t_val[:, :, None]).view(np.uint8).sum(axis=2, dtype=np.int64)
        tied = bool(np.any((at_most - ranks > 1) & valid_slot))
        if tied:
            # A tie with a correct match: order (distance, gallery index) exactly.
            t_cols = perm[pos_cols][:, :, None]
            before = _precedes(d[:, None, :], t_val[:, :, None], perm_ext[None, None, :], t_cols)
            ranks = before.view(np.uint8).sum(axis=2, dtype=np.int64)
        ranks = np.where(valid_slot, ranks, np.iinfo(np.int64).max)
        num_rel = valid_slot.sum(axis=1)
        ok = num_rel > 0
        if not ok.any():
            continue
        ranks_sorted = np.sort(ranks[ok], axis=1)
        n_rel = num_rel[ok]
        kth = np.arange(1, max_pos + 1)[None, :]
        has = kth <= n_rel[:, None]
        precision = np.where(has, kth / (np.where(has, ranks_sorted, 0) + 1.0), 0.0)
        ap_sum += float(np.sum(precision.sum(axis=1) / n_rel))
        last = np.take_along_axis(ranks_sorted, (n_rel - 1)[:, None], axis=1)[:, 0]
        inp_sum += float(np.sum(n_rel / (last + 1.0)))
        num_valid += int(ok.sum())

        first = ranks_sorted[:, 0]
        cmc_std_hits += np.bincount(np.minimum(first, max_rank), minlength=max_rank + 1)[:max_rank]

        # De-duplicated rank: identities with an image before the first correct match.
        first_slot = np.argmin(ranks[ok], axis=1)
        if tied:
            before_first = before[np.flatnonzero(ok), first_slot, :num_g]
            ids_before = np.logical_or.reduceat(before_first, starts, axis=1).sum(axis=1)
        else:
            nearest = d[ok][:, pad_cols].min(axis=1)
            t_first = t_val[np.flatnonzero(ok), first_slot]
            ids_before = (nearest < t_first[:, None]).sum(axis=1)
        cmc_dedup_hits += np.bincount(np.minimum(ids_before, max_rank), minlength=max_rank + 1)[
            :max_rank
        ]

    if num_valid == 0:
        raise ValueError("no valid query: no query identity occurs in its gallery")
    cmc_standard = np.cumsum(cmc_std_hits) / num_valid
    cmc_dedup = np.cumsum(cmc_dedup_hits) / num_valid
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
    )


def regdb_metrics(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    max_rank: int = 20,
    chunk_size: Optional[int] = None,
) -> RankMetrics:
    """RegDB metrics: nothing removed, standard CMC (``cmc`` == ``cmc_standard``)."""
    return rank_metrics(
        distmat, q_pids, g_pids, max_rank=max_rank, deduplicate_cmc=False, chunk_size=chunk_size
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
