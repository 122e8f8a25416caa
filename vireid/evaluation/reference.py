"""Readable per-query reference of the VI-ReID ranking metrics.

This module is the executable specification of :mod:`vireid.evaluation.metrics`:
one Python iteration per query, written to be read rather than to be fast. It
follows the behaviour of the public Cross-Modal-Re-ID-baseline ``eval_metrics.py``
(used by AGW, DDAG and the paper) with three deliberate choices:

* the gallery is ranked with a *stable* argsort, so equal distances keep gallery
  order (the golden files were produced that way; numpy's default quicksort
  leaves tied items in an unspecified order);
* a query whose identity is absent from its (filtered) gallery is skipped for
  every metric; its all-zero de-duplicated CMC row adds nothing, and every
  curve is divided by the number of valid queries, as the reference does;
* each per-query curve is the cumulative match over the whole ranked list and
  only then cut at ``max_rank`` (the reference cuts first, which breaks when a
  filtered or de-duplicated list is shorter than ``max_rank``; the values are
  identical otherwise).

Tests and ``benchmarks/bench_eval_metrics.py`` compare the vectorised
implementation against these functions.
"""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

import numpy as np

from vireid.evaluation.metrics import (
    RankMetrics,
    _effective_max_rank,
    _validate,
    sysu_excluded_camera_pairs,
)

__all__ = ["sysu_metrics_loop", "regdb_metrics_loop", "rank_metrics_loop"]


def rank_metrics_loop(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: Optional[np.ndarray] = None,
    g_camids: Optional[np.ndarray] = None,
    max_rank: int = 20,
    excluded_camera_pairs: Iterable[Tuple[int, int]] = (),
    deduplicate_cmc: bool = False,
) -> RankMetrics:
    """Per-query loop computing CMC (de-duplicated and standard), mAP and mINP.

    ``excluded_camera_pairs`` lists ``(query camera, gallery camera)`` pairs whose
    gallery images are removed from that query's ranking (SYSU-MM01: ``(3, 2)``).
    See :func:`vireid.evaluation.metrics.rank_metrics` for the argument contract.
    """
    distmat, q_pids, g_pids, q_camids, g_camids = _validate(
        distmat, q_pids, g_pids, q_camids, g_camids
    )
    pairs = [(int(q), int(g)) for q, g in excluded_camera_pairs]
    if pairs and (q_camids is None or g_camids is None):
        raise ValueError("excluded_camera_pairs needs q_camids and g_camids")
    num_q, num_g = distmat.shape
    max_rank = _effective_max_rank(max_rank, num_g)

    cmc_dedup_sum = np.zeros(max_rank, dtype=np.float64)
    cmc_std_sum = np.zeros(max_rank, dtype=np.float64)
    ap_values = []
    inp_values = []
    for qi in range(num_q):
        order = np.argsort(distmat[qi], kind="stable")
        keep = np.ones(num_g, dtype=bool)
        for q_cam, g_cam in pairs:
            if q_camids[qi] == q_cam:
                keep &= g_camids[order] != g_cam
        ranked_pids = g_pids[order][keep]
        matches = ranked_pids == q_pids[qi]
        if not matches.any():
            continue  # identity absent from this query's gallery: not a valid query

        # Standard CMC: 1 from the first correct match on.
        first = int(np.argmax(matches))
        cmc_std = (np.arange(len(matches)) >= first).astype(np.float64)
        cmc_std_sum += _cut(cmc_std, max_rank)

        # De-duplicated CMC: keep each identity's first occurrence only.
        _, first_index = np.unique(ranked_pids, return_index=True)
        dedup_pids = ranked_pids[np.sort(first_index)]
        cmc_dedup = np.cumsum(dedup_pids == q_pids[qi]).astype(np.float64)
        cmc_dedup_sum += _cut(cmc_dedup, max_rank)

        # Average precision over every correct match (repeats kept).
        hits = np.cumsum(matches)
        positions = np.arange(1, len(matches) + 1)
        num_rel = hits[-1]
        ap_values.append(float(np.sum((hits / positions)[matches]) / num_rel))

        # Inverse negative penalty: correct matches / position of the last one.
        last = int(np.flatnonzero(matches)[-1])
        inp_values.append(float(num_rel / (last + 1.0)))

    num_valid = len(ap_values)
    if num_valid == 0:
        raise ValueError("no valid query: no query identity occurs in its gallery")
    cmc_standard = cmc_std_sum / num_valid
    return RankMetrics(
        cmc=cmc_dedup_sum / num_valid if deduplicate_cmc else cmc_standard,
        cmc_standard=cmc_standard,
        mAP=float(np.mean(ap_values)),
        mINP=float(np.mean(inp_values)),
        num_valid_queries=num_valid,
        num_queries=num_q,
    )


def _cut(curve: np.ndarray, max_rank: int) -> np.ndarray:
    """First ``max_rank`` values of a cumulative curve, extended with its last value."""
    out = np.empty(max_rank, dtype=np.float64)
    n = min(len(curve), max_rank)
    out[:n] = curve[:n]
    out[n:] = curve[-1] if len(curve) else 0.0
    return out


def sysu_metrics_loop(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
    excluded_camera_pairs: Optional[Iterable[Tuple[int, int]]] = None,
) -> RankMetrics:
    """Loop version of :func:`vireid.evaluation.metrics.sysu_metrics`."""
    if excluded_camera_pairs is None:
        excluded_camera_pairs = sysu_excluded_camera_pairs()
    return rank_metrics_loop(
        distmat, q_pids, g_pids, q_camids, g_camids, max_rank, excluded_camera_pairs, True
    )


def regdb_metrics_loop(
    distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, max_rank: int = 20
) -> RankMetrics:
    """Loop version of :func:`vireid.evaluation.metrics.regdb_metrics`."""
    return rank_metrics_loop(distmat, q_pids, g_pids, None, None, max_rank, (), False)
