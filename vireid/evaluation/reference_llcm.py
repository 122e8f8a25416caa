"""Readable per-query reference of LLCM's ranking metrics.

The executable specification of :func:`vireid.evaluation.llcm_metrics`, one Python
iteration per query, following the public DEEN code's ``eval_metrics.eval_llcm``: for
each query the gallery images of its identity and its camera number are removed, the
reported CMC ranks de-duplicated identities, mAP and mINP keep repeated identities. It
makes the choices of :mod:`vireid.evaluation.reference` (stable ranking, queries without
a correct match skipped, each curve cut at ``max_rank`` after the cumulative match).
Tests and ``benchmarks/bench_eval_metrics.py`` compare the vectorised version with it.
"""
from __future__ import annotations

import numpy as np

from vireid.evaluation.metrics import RankMetrics, _effective_max_rank, _validate
from vireid.evaluation.reference import _cut

__all__ = ["llcm_metrics_loop"]


def llcm_metrics_loop(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
) -> RankMetrics:
    """Loop version of :func:`vireid.evaluation.llcm_metrics`."""
    if q_camids is None or g_camids is None:
        raise ValueError("llcm_metrics needs q_camids and g_camids")
    distmat, q_pids, g_pids, q_camids, g_camids = _validate(distmat, q_pids, g_pids, q_camids, g_camids)
    num_q, num_g = distmat.shape
    max_rank = _effective_max_rank(max_rank, num_g)

    cmc_dedup_sum = np.zeros(max_rank, dtype=np.float64)
    cmc_std_sum = np.zeros(max_rank, dtype=np.float64)
    ap_values = []
    inp_values = []
    for qi in range(num_q):
        order = np.argsort(distmat[qi], kind="stable")
        # the query's own identity seen by its own camera number is not searched for
        remove = (g_pids[order] == q_pids[qi]) & (g_camids[order] == q_camids[qi])
        ranked_pids = g_pids[order][~remove]
        matches = ranked_pids == q_pids[qi]
        if not matches.any():
            continue  # identity absent from this query's gallery: not a valid query

        # Standard CMC: 1 from the first correct match on.
        first = int(np.argmax(matches))
        cmc_std_sum += _cut((np.arange(len(matches)) >= first).astype(np.float64), max_rank)

        # De-duplicated CMC: keep each identity's first occurrence only.
        _, first_index = np.unique(ranked_pids, return_index=True)
        dedup_pids = ranked_pids[np.sort(first_index)]
        cmc_dedup_sum += _cut(np.cumsum(dedup_pids == q_pids[qi]).astype(np.float64), max_rank)

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
    return RankMetrics(
        cmc=cmc_dedup_sum / num_valid,
        cmc_standard=cmc_std_sum / num_valid,
        mAP=float(np.mean(ap_values)),
        mINP=float(np.mean(inp_values)),
        num_valid_queries=num_valid,
        num_queries=num_q,
    )
