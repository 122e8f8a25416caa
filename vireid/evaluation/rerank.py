"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, "Re-ranking Person Re-identification
with k-reciprocal Encoding", CVPR 2017), for query x gallery distances.

The paper's steps, with every convention the equations leave open stated here (the
slow reference in ``tests/evaluation/rerank_reference.py`` implements the same
definitions directly, with Python sets and dense vectors):

* **Pool.** Neighbours are taken among all ``N = Q + G`` images (queries and gallery),
  as is usual for re-ranking: the queries' own neighbourhoods take part.
* ``N(x, k)``: ``x`` itself followed by its ``k`` nearest other images, by the original
  distance ``d`` (``k + 1`` images; ties between different images are broken by
  index). ``k`` is capped at ``N - 1``.
* ``R(x, k) = {y in N(x, k) : x in N(y, k)}`` (eq. 3), the k-reciprocal set (contains x).
* ``R*(x, k1) = R(x, k1)  U  R(y, h)`` over the ``y in R(x, k1)`` with
  ``|R(x, k1) & R(y, h)| >= 2/3 |R(y, h)|`` (eq. 4), ``h = round(k1 / 2)`` (half to even,
  as Python rounds; 10 for the default ``k1 = 20``).
* ``V_x[y] = exp(-d(x, y))`` for ``y in R*(x, k1)``, else 0 (eq. 7, the Gaussian kernel of
  the original distance; not renormalised).
* Local query expansion (eq. 11): ``V'_x`` is the mean of ``V_y`` over the ``k2`` images
  closest to ``x``, ``x`` itself included (the first ``k2`` of ``N(x, .)``).
* Jaccard distance (eqs. 8-10): ``d_J(q, g) = 1 - sum_y min(V'_q[y], V'_g[y]) /
  sum_y max(V'_q[y], V'_g[y])``, the sums over all N images.
* Final distance (eq. 12): ``d*(q, g) = (1 - lambda) d_J(q, g) + lambda d(q, g)``.

Defaults are the paper's ``k1 = 20, k2 = 6, lambda = 0.3``. For features,
:func:`rerank_features` uses the cosine distance ``1 - cos`` (in [0, 2]) as ``d``.

Cost: the ``N x N`` original distances (float32) plus O(N (k1 + k2 k1)) for the sparse
``V`` rows, and two ``Q x G`` float64 arrays for the Jaccard sums. The Jaccard sums are
never dense ``N``-vector operations: the sparse rows are joined on their shared columns
(an inverted index), in chunks of a bounded number of pairs. At SYSU-MM01 size (3,803
queries, 3,000 gallery images) see ``benchmarks/bench_rerank.py`` and docs/inference.md.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
import torch

log = logging.getLogger(__name__)

__all__ = ["RerankConfig", "cosine_distance", "k_reciprocal_rerank", "rerank_features", "half_k"]

#: (query entry, gallery entry) pairs joined per step of the Jaccard sums.
_PAIRS_PER_CHUNK = 1 << 20
#: Rows of the distance matrix ranked per ``topk`` call.
_ROWS_PER_CHUNK = 2048


@dataclass(frozen=True)
class RerankConfig:
    """Re-ranking parameters (the paper's defaults)."""

    k1: int = 20                 # size of the k-reciprocal neighbourhood
    k2: int = 6                  # neighbours averaged by the local query expansion
    lambda_value: float = 0.3    # weight of the original distance in the final distance

    def __post_init__(self) -> None:
        if int(self.k1) != self.k1 or self.k1 < 1:
            raise ValueError(f"k1 must be an integer >= 1, got {self.k1}")
        if int(self.k2) != self.k2 or self.k2 < 1:
            raise ValueError(f"k2 must be an integer >= 1, got {self.k2}")
        if not 0.0 <= float(self.lambda_value) <= 1.0:
            raise ValueError(f"lambda must be in [0, 1], got {self.lambda_value}")

    def to_json(self) -> dict:
        return {"k1": int(self.k1), "k2": int(self.k2), "lambda": float(self.lambda_value)}


def half_k(k1: int) -> int:
    """The ``1/2 k`` of eq. 4: ``round(k1 / 2)``, half to even."""
    return int(round(k1 / 2))


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - cos(a_i, b_j)`` as float32 ``(len(a), len(b))``, clipped to [0, 2]."""
    a = _unit(a)
    b = _unit(b)
    out = 1.0 - a @ b.T
    return np.clip(out, 0.0, 2.0, out=out).astype(np.float32, copy=False)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def rerank_features(query: np.ndarray, gallery: np.ndarray, config: RerankConfig = RerankConfig(),
                    q_q: np.ndarray | None = None) -> np.ndarray:
    """Re-ranked ``(Q, G)`` distances of query and gallery features under the cosine distance.

    ``q_q`` (the queries' own cosine distances) may be passed when it is reused over
    several galleries (the SYSU-MM01 trials share their queries).
    """
    if q_q is None:
        q_q = cosine_distance(query, query)
    return k_reciprocal_rerank(cosine_distance(query, gallery), q_q, cosine_distance(gallery, gallery), config)


def k_reciprocal_rerank(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray,
                        config: RerankConfig = RerankConfig()) -> np.ndarray:
    """Re-ranked ``(Q, G)`` float32 distances ``d*`` from the original distance blocks.

    Args:
        q_g: ``(Q, G)`` query-gallery distances (non-negative, smaller = closer).
        q_q: ``(Q, Q)`` query-query distances.
        g_g: ``(G, G)`` gallery-gallery distances.
        config: ``k1``, ``k2`` and ``lambda``.

    Raises:
        ValueError: shapes that do not fit, or non-finite distances.
    """
    q_g, q_q, g_g = (np.asarray(m, dtype=np.float32) for m in (q_g, q_q, g_g))
    if q_g.ndim != 2 or q_q.shape != (q_g.shape[0],) * 2 or g_g.shape != (q_g.shape[1],) * 2:
        raise ValueError(f"distance blocks do not fit: q_g {q_g.shape}, q_q {q_q.shape}, g_g {g_g.shape}")
    num_q, num_g = q_g.shape
    n = num_q + num_g
    if num_q == 0 or num_g == 0:
        return np.zeros((num_q, num_g), np.float32)
    dist = np.empty((n, n), np.float32)
    dist[:num_q, :num_q] = q_q
    dist[:num_q, num_q:] = q_g
    dist[num_q:, :num_q] = q_g.T
    dist[num_q:, num_q:] = g_g
    if not np.isfinite(dist).all():
        raise ValueError("distances must be finite")
    k1 = min(int(config.k1), n - 1)
    h = min(half_k(config.k1), n - 1)
    k2 = min(int(config.k2), n)
    neighbours = _neighbours(dist, max(k1, h, k2 - 1))                 # (N, m + 1), self first
    r_k1 = _reciprocal(neighbours[:, :k1 + 1])
    r_half = _reciprocal(neighbours[:, :h + 1])
    indptr, cols, vals = _expanded_rows(r_k1, r_half, dist)
    del dist, r_k1, r_half                                             # the N x N block is not needed again
    indptr, cols, vals = _query_expansion(indptr, cols, vals, neighbours[:, :k2], n)
    out = _jaccard(indptr, cols, vals, num_q, n)                       # (Q, G) float64, d_J
    out *= 1.0 - config.lambda_value
    out += config.lambda_value * q_g
    log.debug("re-ranked %d x %d (k1=%d, k2=%d, lambda=%.2f), %d V' entries", num_q, num_g, k1, k2,
              config.lambda_value, len(vals))
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- steps
def _neighbours(dist: np.ndarray, k: int) -> np.ndarray:
    """``(N, k + 1)`` int64: each row's own index, then its ``k`` nearest others, ordered by
    (distance, index). ``topk`` finds each row's (k + 1)-th value; everything up to it (more
    than k + 1 images where several share that distance) is then ordered exactly."""
    n = dist.shape[0]
    out = np.empty((n, k + 1), np.int64)
    d = torch.from_numpy(dist)
    for start in range(0, n, _ROWS_PER_CHUNK):
        stop = min(n, start + _ROWS_PER_CHUNK)
        block = d[start:stop].clone()
        rows = torch.arange(stop - start)
        block[rows, rows + start] = -float("inf")                      # self first, always
        kth = torch.topk(block, k + 1, dim=1, largest=False, sorted=True).values[:, -1:]
        r, c = torch.nonzero(block <= kth, as_tuple=True)              # row-major: index order within a row
        r, c = r.numpy(), c.numpy()
        order = np.lexsort((c, block[r, c].numpy(), r))                # by row, distance, index
        r, c = r[order], c[order]
        first = np.searchsorted(r, np.arange(stop - start))
        take = first[:, None] + np.arange(k + 1)[None, :]
        out[start:stop] = c[take]
    return out


def _reciprocal(neigh: np.ndarray) -> List[np.ndarray]:
    """``R(x, k)`` for every x from ``N(x, k)`` (the rows of ``neigh``): ``y`` kept where ``x``
    is in ``N(y, k)``; in rank order."""
    n, m = neigh.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), m)
    cols = neigh.ravel()
    forward = np.sort(rows * n + cols)
    backward = cols * n + rows
    pos = np.minimum(np.searchsorted(forward, backward), len(forward) - 1)
    keep = (forward[pos] == backward).reshape(n, m)
    return [neigh[x][keep[x]] for x in range(n)]


def _expanded_rows(r_k1: List[np.ndarray], r_half: List[np.ndarray], dist: np.ndarray
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of ``V`` (eq. 7) over ``R*(x, k1)`` (eq. 4): ``(indptr, sorted columns, exp(-d))``."""
    half_sets = [frozenset(r.tolist()) for r in r_half]
    counts = np.empty(len(r_k1), np.int64)
    members: List[np.ndarray] = []
    for x, r in enumerate(r_k1):
        base = frozenset(r.tolist())
        grown = set(base)
        for y in r.tolist():
            hy = half_sets[y]
            if 3 * len(base & hy) >= 2 * len(hy):
                grown |= hy
        arr = np.fromiter(grown, np.int64, len(grown))
        arr.sort()
        members.append(arr)
        counts[x] = len(arr)
    indptr = np.zeros(len(r_k1) + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    cols = np.concatenate(members)
    rows = np.repeat(np.arange(len(r_k1)), counts)
    vals = np.exp(-dist[rows, cols].astype(np.float64))
    return indptr, cols, vals


def _query_expansion(indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, near: np.ndarray, n: int
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of ``V'_x = mean(V_y for y in near[x])`` (eq. 11)."""
    k2 = near.shape[1]
    counts = indptr[1:] - indptr[:-1]
    src = near.ravel()                                                 # (N * k2,) rows averaged
    take = counts[src]
    starts = np.repeat(indptr[src], take)
    offsets = np.arange(int(take.sum()), dtype=np.int64) - np.repeat(np.cumsum(take) - take, take)
    entry = starts + offsets                                           # entries of V gathered
    target = np.repeat(np.repeat(np.arange(n, dtype=np.int64), k2), take)
    keys, inverse = np.unique(target * n + cols[entry], return_inverse=True)
    summed = np.bincount(inverse, weights=vals[entry], minlength=len(keys))
    new_rows = keys // n
    new_indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(new_rows, minlength=n), out=new_indptr[1:])
    return new_indptr, keys % n, summed / k2


def _jaccard(indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, num_q: int, n: int) -> np.ndarray:
    """``(Q, G)`` float64 Jaccard distances (eq. 10) between the query rows ``< num_q`` and the
    gallery rows of the CSR ``V'``, through an inverted index on the columns."""
    num_g = n - num_q
    rows = np.repeat(np.arange(n, dtype=np.int64), indptr[1:] - indptr[:-1])
    sums = np.bincount(rows, weights=vals, minlength=n)
    split = indptr[num_q]
    q_rows, q_cols, q_vals = rows[:split], cols[:split], vals[:split]
    g_rows, g_cols, g_vals = rows[split:] - num_q, cols[split:], vals[split:]
    order = np.argsort(g_cols, kind="stable")
    g_rows, g_cols, g_vals = g_rows[order], g_cols[order], g_vals[order]
    g_count = np.bincount(g_cols, minlength=n)
    g_start = np.concatenate([[0], np.cumsum(g_count)[:-1]])
    reps = g_count[q_cols]                                             # gallery entries sharing the column
    ends = np.cumsum(reps)
    minsum = np.zeros(num_q * num_g, np.float64)
    acc = torch.from_numpy(minsum)
    first = 0
    while first < len(q_cols):
        base = ends[first - 1] if first else 0
        last = max(first + 1, int(np.searchsorted(ends, base + _PAIRS_PER_CHUNK, side="right")))
        r = reps[first:last]
        total = int(r.sum())
        if total:
            qe = np.repeat(np.arange(first, last), r)
            within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(r) - r, r)
            ge = g_start[q_cols[qe]] + within
            flat = q_rows[qe] * num_g + g_rows[ge]
            acc.index_add_(0, torch.from_numpy(flat), torch.from_numpy(np.minimum(q_vals[qe], g_vals[ge])))
        first = last
    minsum = minsum.reshape(num_q, num_g)
    maxsum = np.add.outer(sums[:num_q], sums[num_q:])
    maxsum -= minsum
    minsum /= maxsum                                                   # in place: two Q x G arrays at most
    del maxsum
    return np.subtract(1.0, minsum, out=minsum)
