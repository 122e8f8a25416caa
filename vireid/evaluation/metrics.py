"""Vectorised ranking metrics of the VI-ReID literature (CMC, mAP, mINP).

The numbers are those of the public Cross-Modal-Re-ID-baseline ``eval_metrics.py``
(AGW, DDAG and the paper report with it), reproduced to 1e-6 on
``shared/golden/eval_*.npz``:

* SYSU-MM01 (:func:`sysu_metrics`): the camera pairs of ``sysu.yaml``'s
  ``protocol.exclusions`` are removed from a query's ranking (for a query of camera 3
  the gallery images of camera 2: both are indoor cameras of the same room). The reported CMC de-duplicates the ranked gallery identities, keeping
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

The computation lives in the private :mod:`vireid.evaluation._kernel` (exact ranks of
the correct matches without sorting a distance row); the readable per-query version is
:mod:`vireid.evaluation.reference`; ``benchmarks/bench_eval_metrics.py`` times both.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

from vireid.data.spec import load_spec
from vireid.evaluation._kernel import _check_finite, rank_sums

logger = logging.getLogger(__name__)

__all__ = [
    "RankMetrics",
    "TrialSummary",
    "rank_metrics",
    "sysu_excluded_camera_pairs",
    "sysu_metrics",
    "regdb_metrics",
    "aggregate_trials",
]


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
    check_finite: bool = True,
):
    """Check shapes and values; return numpy arrays (distmat as float32 or float64).

    ``check_finite=False`` leaves the NaN / infinity check to the caller, which must run
    :func:`_check_finite` on every row (the vectorised metrics check each chunk of rows
    while it is in the CPU cache, which saves a pass over the matrix)."""
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
    if check_finite:
        _check_finite(distmat)
    return distmat, out["q_pids"], out["g_pids"], out.get("q_camids"), out.get("g_camids")


def _effective_max_rank(max_rank: int, num_g: int) -> int:
    """``max_rank`` cut to the gallery size, as the reference does."""
    if int(max_rank) != max_rank or max_rank < 1:
        raise ValueError(f"max_rank must be a positive integer, got {max_rank!r}")
    if num_g < max_rank:
        logger.warning("gallery has only %d images: CMC stops at rank %d", num_g, num_g)
        return int(num_g)
    return int(max_rank)


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
        chunk_size: queries per chunk (default: about 256k distances a chunk, 512k with
            several workers, which keeps a chunk's working arrays near the CPU's cache).
        workers: threads working on chunks at once, i.e. the cores used (default 1;
            torch's intra-op threads are set to 1 for the call and restored after). On
            an idle 2-core machine 2 threads made full-size multi-shot SYSU-MM01 1.28x
            faster and single-shot 1.03x. The result does not depend on it (nor on
            ``chunk_size``): per-query AP and INP are summed once, in query order.

    Raises:
        ValueError: shapes that do not match, an empty query set or gallery, NaN or
            infinite distances, or no query with a correct match in its gallery.
    """
    distmat, q_pids, g_pids, q_camids, g_camids = _validate(
        distmat, q_pids, g_pids, q_camids, g_camids, check_finite=False  # checked chunk by chunk
    )
    pairs = [(int(q), int(g)) for q, g in excluded_camera_pairs]
    if pairs and (q_camids is None or g_camids is None):
        raise ValueError("excluded_camera_pairs needs q_camids and g_camids")
    num_q, num_g = distmat.shape
    max_rank = _effective_max_rank(max_rank, num_g)
    if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")

    sums = rank_sums(distmat, q_pids, g_pids, q_camids, g_camids, pairs, max_rank, deduplicate_cmc,
                     chunk_size, workers)
    ap_sum, inp_sum, num_valid, cmc_std_hits, cmc_dedup_hits = sums
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


def sysu_excluded_camera_pairs() -> Tuple[Tuple[int, int], ...]:
    """``(query camera, gallery camera)`` numbers removed from a query's ranking on
    SYSU-MM01: ``protocol.exclusions`` of ``sysu.yaml`` (``((3, 2),)``)."""
    protocol = load_spec("sysu").evaluation
    return protocol.excluded_camera_pairs if protocol is not None else ()


def sysu_metrics(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
    excluded_camera_pairs: Optional[Iterable[Tuple[int, int]]] = None,
    chunk_size: Optional[int] = None,
    workers: Optional[int] = None,
) -> RankMetrics:
    """SYSU-MM01 metrics: the excluded camera pairs (default
    :func:`sysu_excluded_camera_pairs`: camera-2 gallery dropped for camera-3 queries)
    removed, ``cmc`` de-duplicated by identity, ``cmc_standard`` not. See :func:`rank_metrics`."""
    if q_camids is None or g_camids is None:
        raise ValueError("sysu_metrics needs q_camids and g_camids")
    if excluded_camera_pairs is None:
        excluded_camera_pairs = sysu_excluded_camera_pairs()
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


def standard_metrics(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                     q_camids: Optional[np.ndarray] = None, g_camids: Optional[np.ndarray] = None) -> RankMetrics:
    """The metric of a protocol without camera rules (RegDB's; a dataset reader's default):
    :func:`regdb_metrics`, with the cameras a reader passes ignored."""
    return regdb_metrics(distmat, q_pids, g_pids)


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
