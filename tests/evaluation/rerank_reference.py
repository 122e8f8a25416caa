"""A direct, slow k-reciprocal re-ranking, written from the equations of Zhong et al.
(CVPR 2017) with the conventions stated in :mod:`vireid.evaluation.rerank`: Python
sets for N, R and R*, dense N-vectors for V, explicit min / max sums. Nothing here is
shared with the fast implementation (no inverted index, no CSR, no top-k call).
"""
from __future__ import annotations

import math

import numpy as np


def _nearest(dist: np.ndarray, x: int, k: int) -> list:
    """N(x, k): x, then its k nearest other images by (distance, index)."""
    others = sorted((float(dist[x, y]), y) for y in range(dist.shape[0]) if y != x)
    return [x] + [y for _, y in others[:k]]


def slow_rerank(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, k1: int = 20, k2: int = 6,
                lam: float = 0.3) -> np.ndarray:
    q_g, q_q, g_g = (np.asarray(m, np.float64) for m in (q_g, q_q, g_g))
    nq, ng = q_g.shape
    n = nq + ng
    d = np.block([[q_q, q_g], [q_g.T, g_g]])
    # the float32 rounding the library applies to its inputs
    d = d.astype(np.float32).astype(np.float64)
    k1c = min(k1, n - 1)
    half = min(int(round(k1 / 2)), n - 1)
    k2c = min(k2, n)

    def reciprocal(k: int) -> list:
        near = [set(_nearest(d, x, k)) for x in range(n)]                        # N(x, k)
        return [{y for y in near[x] if x in near[y]} for x in range(n)]          # eq. 3

    r_k1 = reciprocal(k1c)
    r_half = reciprocal(half)
    v = np.zeros((n, n))
    for x in range(n):
        r_star = set(r_k1[x])
        for y in r_k1[x]:                                                          # eq. 4
            if len(r_k1[x] & r_half[y]) >= (2.0 / 3.0) * len(r_half[y]):
                r_star |= r_half[y]
        for y in r_star:
            v[x, y] = math.exp(-d[x, y])                                           # eq. 7
    v_qe = np.zeros_like(v)
    for x in range(n):                                                             # eq. 11
        near = _nearest(d, x, k2c - 1)                                             # k2 images, x first
        v_qe[x] = sum(v[y] for y in near) / len(near)
    out = np.zeros((nq, ng))
    for i in range(nq):
        for j in range(ng):
            a, b = v_qe[i], v_qe[nq + j]
            d_j = 1.0 - np.minimum(a, b).sum() / np.maximum(a, b).sum()           # eqs. 8-10
            out[i, j] = (1.0 - lam) * d_j + lam * d[i, nq + j]                     # eq. 12
    return out
