"""LLCM's ranking metrics, as the code that introduced the benchmark computes them.

The public DEEN code's ``eval_metrics.eval_llcm`` (later LLCM papers report with it),
reproduced on ``shared/golden/eval_llcm_*.npz``. It is SYSU-MM01's computation
(:func:`vireid.evaluation.sysu_metrics`) with another removal rule:

* for each query, the gallery images of its identity *and* its camera number are
  dropped (each LLCM camera records both modalities, so the numbers are shared);
* the reported CMC de-duplicates the ranked gallery identities (first occurrence kept);
  the standard CMC (``cmc_standard``), mAP and mINP keep repeated identities;
* queries without a correct match left are skipped; every curve is divided by the
  number of valid queries; ties keep gallery order (a stable sort).

Which lists are the rows and columns of each direction (the reference swaps the roles
in VIS-to-IR) is :func:`vireid.data.protocol_llcm.llcm_ranking_lists`. The computation is
:mod:`vireid.evaluation._kernel_llcm` over the SYSU-MM01 kernel; the readable
per-query version is :func:`vireid.evaluation.reference_llcm.llcm_metrics_loop`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from vireid.evaluation._kernel_llcm import llcm_rank_sums
from vireid.evaluation.metrics import RankMetrics, _effective_max_rank, _validate

__all__ = ["llcm_metrics"]


def llcm_metrics(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
    chunk_size: Optional[int] = None,
    workers: Optional[int] = None,
) -> RankMetrics:
    """LLCM metrics of a query x gallery distance matrix (smaller = closer): each query's
    own identity-and-camera images removed, ``cmc`` de-duplicated by identity,
    ``cmc_standard`` not. Arguments, ``chunk_size`` and ``workers`` as
    :func:`vireid.evaluation.rank_metrics`.

    Raises:
        ValueError: missing cameras, shapes that do not match, an empty query set or
            gallery, NaN or infinite distances, or no query with a correct match left.
    """
    if q_camids is None or g_camids is None:
        raise ValueError("llcm_metrics needs q_camids and g_camids")
    distmat, q_pids, g_pids, q_camids, g_camids = _validate(
        distmat, q_pids, g_pids, q_camids, g_camids, check_finite=False  # checked chunk by chunk
    )
    num_q, num_g = distmat.shape
    max_rank = _effective_max_rank(max_rank, num_g)
    if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    sums = llcm_rank_sums(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, chunk_size, workers)
    if sums.num_valid == 0:
        raise ValueError("no valid query: no query identity occurs in its gallery")
    cmc_standard = np.cumsum(sums.std_hits[:max_rank]) / sums.num_valid
    return RankMetrics(
        cmc=np.cumsum(sums.dedup_hits[:max_rank]) / sums.num_valid,
        cmc_standard=cmc_standard,
        mAP=sums.ap_sum / sums.num_valid,
        mINP=sums.inp_sum / sums.num_valid,
        num_valid_queries=sums.num_valid,
        num_queries=num_q,
    )
