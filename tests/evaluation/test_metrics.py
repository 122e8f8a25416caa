"""Ranking metrics: golden values of the reference code, hand-computed cases,
vectorised == per-query loop, and the error contract."""
from __future__ import annotations

import numpy as np
import pytest

from vireid.evaluation import aggregate_trials, rank_metrics, regdb_metrics, sysu_metrics
from vireid.evaluation.metrics import RankMetrics
from vireid.evaluation.reference import rank_metrics_loop, regdb_metrics_loop, sysu_metrics_loop

GOLDEN_SYSU = ["eval_sysu_1000.npz", "eval_sysu_1001.npz", "eval_sysu_1002.npz"]
GOLDEN_REGDB = ["eval_regdb_1000.npz", "eval_regdb_1001.npz"]


def _assert_same(a: RankMetrics, b: RankMetrics, tol: float = 1e-9) -> None:
    np.testing.assert_allclose(a.cmc, b.cmc, rtol=0, atol=tol)
    np.testing.assert_allclose(a.cmc_standard, b.cmc_standard, rtol=0, atol=tol)
    assert a.mAP == pytest.approx(b.mAP, abs=tol)
    assert a.mINP == pytest.approx(b.mINP, abs=tol)
    assert a.num_valid_queries == b.num_valid_queries
    assert a.num_queries == b.num_queries


# --------------------------------------------------------------------------- golden
@pytest.mark.shared
@pytest.mark.parametrize("name", GOLDEN_SYSU)
@pytest.mark.parametrize("impl", [sysu_metrics, sysu_metrics_loop])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sysu_matches_golden(golden_dir, name, impl, dtype):
    z = np.load(golden_dir / name)
    r = impl(z["distmat"].astype(dtype), z["q_pids"], z["g_pids"], z["q_camids"], z["g_camids"])
    np.testing.assert_allclose(r.cmc, z["cmc"], rtol=0, atol=1e-6)
    assert r.mAP == pytest.approx(float(z["mAP"]), abs=1e-6)
    assert r.mINP == pytest.approx(float(z["mINP"]), abs=1e-6)
    assert r.num_queries == len(z["q_pids"])


@pytest.mark.shared
@pytest.mark.parametrize("name", GOLDEN_REGDB)
@pytest.mark.parametrize("impl", [regdb_metrics, regdb_metrics_loop])
def test_regdb_matches_golden(golden_dir, name, impl):
    z = np.load(golden_dir / name)
    r = impl(z["distmat"], z["q_pids"], z["g_pids"])
    np.testing.assert_allclose(r.cmc, z["cmc"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(r.cmc, r.cmc_standard)
    assert r.mAP == pytest.approx(float(z["mAP"]), abs=1e-6)
    assert r.mINP == pytest.approx(float(z["mINP"]), abs=1e-6)


@pytest.mark.shared
def test_golden_case_with_unmatched_query_is_skipped(golden_dir):
    """eval_sysu_1002 holds a query whose identity is absent once camera 2 is dropped."""
    z = np.load(golden_dir / "eval_sysu_1002.npz")
    r = sysu_metrics(z["distmat"], z["q_pids"], z["g_pids"], z["q_camids"], z["g_camids"])
    expected_valid = 0
    for pid, cam in zip(z["q_pids"], z["q_camids"]):
        keep = ~((cam == 3) & (z["g_camids"] == 2))
        expected_valid += bool(np.any(z["g_pids"][keep] == pid))
    assert expected_valid < len(z["q_pids"])
    assert r.num_valid_queries == expected_valid


# ------------------------------------------------------------------ hand-computed
@pytest.mark.parametrize("impl", [sysu_metrics, sysu_metrics_loop])
def test_hand_computed_sysu_query(impl):
    # One camera-3 query of identity 1. Gallery by increasing distance:
    # idx: 0    1    2    3    4    5
    # pid: 1    2    2    1    3    1
    # cam: 2    1    4    1    5    4      (index 0 is camera 2: removed for a cam-3 query)
    dist = np.array([[0.0, 0.1, 0.2, 0.3, 0.4, 0.5]], dtype=np.float32)
    g_pids = np.array([1, 2, 2, 1, 3, 1])
    g_cams = np.array([2, 1, 4, 1, 5, 4])
    r = impl(dist, np.array([1]), g_pids, np.array([3]), g_cams, max_rank=5)
    # kept ranking: pids 2 2 1 3 1 -> correct at positions 3 and 5
    np.testing.assert_array_equal(r.cmc_standard, [0, 0, 1, 1, 1])
    # de-duplicated: 2 1 3 -> correct at position 2
    np.testing.assert_array_equal(r.cmc, [0, 1, 1, 1, 1])
    assert r.mAP == pytest.approx((1 / 3 + 2 / 5) / 2, abs=1e-12)
    assert r.mINP == pytest.approx(2 / 5, abs=1e-12)
    assert r.num_valid_queries == 1


@pytest.mark.parametrize("impl", [sysu_metrics, sysu_metrics_loop])
def test_camera6_query_keeps_camera2(impl):
    dist = np.array([[0.0, 0.1, 0.2, 0.3, 0.4, 0.5]], dtype=np.float32)
    g_pids = np.array([1, 2, 2, 1, 3, 1])
    g_cams = np.array([2, 1, 4, 1, 5, 4])
    r = impl(dist, np.array([1]), g_pids, np.array([6]), g_cams, max_rank=3)
    np.testing.assert_array_equal(r.cmc, [1, 1, 1])
    assert r.mAP == pytest.approx((1 + 2 / 4 + 3 / 6) / 3, abs=1e-12)
    assert r.mINP == pytest.approx(3 / 6, abs=1e-12)


@pytest.mark.parametrize("impl", [regdb_metrics, regdb_metrics_loop])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_keep_gallery_order(impl, dtype):
    # Two gallery images at the same distance: the lower gallery index ranks first.
    q = np.array([1, 1])
    g = np.array([2, 1, 2])
    dist = np.array([[0.5, 0.5, 0.9], [0.9, 0.5, 0.5]], dtype=dtype)
    r = impl(dist, q, g, max_rank=3)
    # query 0: ranking 2,1,2 -> first hit at 2; query 1: ranking 1,2,2 -> hit at 1
    np.testing.assert_allclose(r.cmc, [0.5, 1.0, 1.0])
    assert r.mAP == pytest.approx((1 / 2 + 1) / 2, abs=1e-12)


@pytest.mark.parametrize("impl", [regdb_metrics, regdb_metrics_loop])
def test_signed_zeros_tie(impl):
    # -0.0 == +0.0: a tie, so gallery order decides (not the sign bit).
    dist = np.array([[0.0, -0.0]], dtype=np.float32)
    r = impl(dist, np.array([1]), np.array([2, 1]), max_rank=2)
    np.testing.assert_array_equal(r.cmc, [0, 1])


def test_negative_distances_are_ranked_by_value():
    dist = np.array([[-0.5, -2.0, 1.0, -1.0]], dtype=np.float32)
    r = regdb_metrics(dist, np.array([1]), np.array([7, 1, 7, 7]), max_rank=4)
    np.testing.assert_array_equal(r.cmc, [1, 1, 1, 1])  # -2.0 is the smallest


def test_gallery_smaller_than_max_rank_cuts_the_curve():
    dist = np.array([[0.2, 0.1, 0.3]], dtype=np.float32)
    r = regdb_metrics(dist, np.array([5]), np.array([4, 3, 5]), max_rank=20)
    np.testing.assert_array_equal(r.cmc, [0, 0, 1])


def test_short_deduplicated_list_keeps_last_value():
    # Two identities in a 6-image gallery: the de-duplicated list has 2 entries.
    dist = np.arange(6, dtype=np.float32)[None, :]
    r = sysu_metrics(dist, np.array([1]), np.array([2, 2, 1, 1, 2, 1]), np.array([6]),
                     np.array([1, 1, 1, 1, 1, 1]), max_rank=5)
    np.testing.assert_array_equal(r.cmc, [0, 1, 1, 1, 1])
    np.testing.assert_array_equal(r.cmc_standard, [0, 0, 1, 1, 1])


def test_rank_accessor():
    r = regdb_metrics(np.array([[0.2, 0.1]], np.float32), np.array([1]), np.array([1, 2]))
    assert r.rank(1) == 0.0 and r.rank(2) == 1.0
    with pytest.raises(ValueError, match="k must be"):
        r.rank(3)


# ------------------------------------------------------------ vectorised == loop
def _random_problem(seed: int, num_q: int, num_g: int, num_ids: int, levels: int):
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(0, num_ids + 2, num_q)  # some identities absent from the gallery
    g_pids = rng.integers(0, num_ids, num_g)
    q_cams = rng.choice([3, 6], num_q)
    g_cams = rng.choice([1, 2, 4, 5], num_g)
    # Few distinct levels -> many ties.
    dist = (rng.integers(0, levels, (num_q, num_g)) / levels).astype(np.float32)
    return dist, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk_size", [None, 1, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorised_equals_loop_sysu(seed, chunk_size, dtype):
    dist, qp, gp, qc, gc = _random_problem(seed, 60, 45, 8, levels=[5, 40, 1000][seed])
    fast = sysu_metrics(dist.astype(dtype), qp, gp, qc, gc, chunk_size=chunk_size)
    slow = sysu_metrics_loop(dist.astype(dtype), qp, gp, qc, gc)
    _assert_same(fast, slow)


@pytest.mark.parametrize("seed", [3, 4])
def test_vectorised_equals_loop_regdb_and_generic(seed):
    dist, qp, gp, qc, gc = _random_problem(seed, 50, 30, 6, levels=7)
    _assert_same(regdb_metrics(dist, qp, gp, max_rank=10), regdb_metrics_loop(dist, qp, gp, max_rank=10))
    pairs = [(3, 2), (6, 5), (6, 4)]
    kwargs = dict(max_rank=12, excluded_camera_pairs=pairs, deduplicate_cmc=True)
    _assert_same(rank_metrics(dist, qp, gp, qc, gc, **kwargs), rank_metrics_loop(dist, qp, gp, qc, gc, **kwargs))


def _grouped_problem(seed: int, per_id: int, num_ids: int = 6, num_q: int = 40):
    """A gallery ordered by identity (as the SYSU-MM01 and RegDB protocols build it)."""
    rng = np.random.default_rng(seed)
    g_pids = np.repeat(np.arange(num_ids), per_id)
    g_cams = rng.choice([1, 2, 4, 5], len(g_pids))
    q_pids = rng.integers(0, num_ids, num_q)
    q_cams = rng.choice([3, 6], num_q)
    dist = rng.standard_normal((num_q, len(g_pids))).astype(np.float32)
    dist -= 2.0 * (q_pids[:, None] == g_pids[None, :])  # correct matches rank early, not always
    return dist, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("per_id", [2, 12])  # few images per identity / many (two code paths)
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("chunk_size", [None, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # float64: the lexsort path
def test_vectorised_equals_loop_grouped_gallery(per_id, workers, chunk_size, dtype):
    dist, qp, gp, qc, gc = _grouped_problem(per_id, per_id)
    dist = dist.astype(dtype)
    fast = sysu_metrics(dist, qp, gp, qc, gc, chunk_size=chunk_size, workers=workers)
    _assert_same(fast, sysu_metrics_loop(dist, qp, gp, qc, gc))
    shuffled = np.random.default_rng(9).permutation(len(gp))  # same problem, columns shuffled
    fast2 = sysu_metrics(dist[:, shuffled], qp, gp[shuffled], qc, gc[shuffled], workers=workers)
    _assert_same(fast2, sysu_metrics_loop(dist[:, shuffled], qp, gp[shuffled], qc, gc[shuffled]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_in_a_gallery_grouped_by_identity(dtype):
    """In a gallery already in identity order the tie-break by gallery index rests on the
    column order of the images sharing a bucket (no column in the float32 key, the grouped
    column in the float64 lexsort): many equal distances check both."""
    dist, qp, gp, qc, gc = _grouped_problem(5, 8)
    dist = (np.round(dist * 2) / 2).astype(dtype)  # a few levels: ties everywhere
    _assert_same(sysu_metrics(dist, qp, gp, qc, gc), sysu_metrics_loop(dist, qp, gp, qc, gc))
    _assert_same(regdb_metrics(dist, qp, gp), regdb_metrics_loop(dist, qp, gp))


@pytest.mark.parametrize(
    "make",
    [
        lambda d: 1e4 + d * 1e-3,  # large offset, tiny spread: float32 rounds many to ties
        lambda d: np.where(d > 0, 1e30, -1e30) * np.abs(d),  # huge magnitudes
        lambda d: np.zeros_like(d),  # every distance equal: gallery order decides all
        lambda d: np.round(d * 2) / 2,  # a few levels: ties with the correct matches
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorised_equals_loop_on_hard_distances(make, dtype):
    """The bucket map loses resolution on these; the exact ordering must still hold."""
    dist, qp, gp, qc, gc = _grouped_problem(5, 8)
    dist = make(dist.astype(np.float64)).astype(dtype)
    _assert_same(sysu_metrics(dist, qp, gp, qc, gc), sysu_metrics_loop(dist, qp, gp, qc, gc))
    _assert_same(regdb_metrics(dist, qp, gp), regdb_metrics_loop(dist, qp, gp))


def test_result_is_bit_identical_whatever_the_chunks_and_workers():
    dist, qp, gp, qc, gc = _random_problem(5, 300, 120, 20, levels=1000)
    ref = sysu_metrics(dist, qp, gp, qc, gc)
    for chunk_size, workers in ((1, 1), (7, 2), (None, 2), (64, 3)):
        got = sysu_metrics(dist, qp, gp, qc, gc, chunk_size=chunk_size, workers=workers)
        assert got.mAP == ref.mAP and got.mINP == ref.mINP, (chunk_size, workers)
        assert np.array_equal(got.cmc, ref.cmc) and np.array_equal(got.cmc_standard, ref.cmc_standard)


def test_workers_argument():
    dist, qp, gp, qc, gc = _grouped_problem(1, 3)
    with pytest.raises(ValueError, match="workers"):
        sysu_metrics(dist, qp, gp, qc, gc, workers=0)


def test_integer_distances_are_accepted():
    dist = np.array([[3, 1, 2]])
    r = regdb_metrics(dist, np.array([1]), np.array([2, 0, 1]), max_rank=3)
    np.testing.assert_array_equal(r.cmc, [0, 1, 1])


# ------------------------------------------------------------------------ errors
def test_shape_mismatch_names_the_array():
    dist = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="q_pids"):
        regdb_metrics(dist, np.array([1, 2, 3]), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="g_pids"):
        regdb_metrics(dist, np.array([1, 2]), np.array([1, 2]))
    with pytest.raises(ValueError, match="g_camids"):
        sysu_metrics(dist, np.array([1, 2]), np.array([1, 2, 3]), np.array([3, 6]), np.array([1]))
    with pytest.raises(ValueError, match="2-D"):
        regdb_metrics(np.zeros(3), np.array([1]), np.array([1, 2, 3]))


@pytest.mark.parametrize("impl", [regdb_metrics, regdb_metrics_loop])
def test_empty_query_set(impl):
    with pytest.raises(ValueError, match="query set is empty"):
        impl(np.zeros((0, 3), np.float32), np.array([], int), np.array([1, 2, 3]))


@pytest.mark.parametrize("impl", [regdb_metrics, regdb_metrics_loop])
def test_no_valid_query(impl):
    with pytest.raises(ValueError, match="no valid query"):
        impl(np.zeros((2, 2), np.float32), np.array([5, 6]), np.array([1, 2]))


def test_all_matches_removed_by_camera_is_no_valid_query():
    with pytest.raises(ValueError, match="no valid query"):
        sysu_metrics(np.zeros((1, 2), np.float32), np.array([1]), np.array([1, 2]),
                     np.array([3]), np.array([2, 1]))


@pytest.mark.parametrize("bad,match", [(np.nan, "NaN"), (np.inf, "infinite")])
def test_non_finite_distances(bad, match):
    dist = np.array([[0.1, bad]], np.float32)
    with pytest.raises(ValueError, match=match):
        regdb_metrics(dist, np.array([1]), np.array([1, 2]))


@pytest.mark.parametrize("workers", [1, 2])
def test_non_finite_distances_anywhere_are_refused(workers):
    """The vectorised version checks rows chunk by chunk: a NaN must still be found in a row
    no chunk ranks (its identity is absent) and in a column its query class removes."""
    dist, qp, gp, qc, gc = _random_problem(0, 60, 45, 8, levels=1000)
    absent = qp.max() + 1
    for where in ("skipped row", "removed column", "ranked row"):
        d, q = dist.copy(), qp.copy()
        if where == "skipped row":
            q[7] = absent
            d[7, 3] = np.nan
        elif where == "removed column":
            row = int(np.flatnonzero(qc == 3)[0])
            d[row, int(np.flatnonzero(gc == 2)[0])] = np.nan
        else:
            d[int(np.flatnonzero(qc == 6)[-1]), -1] = np.inf
        with pytest.raises(ValueError, match="NaN|infinite"):
            sysu_metrics(d, q, gp, qc, gc, workers=workers, chunk_size=4)


def test_bad_arguments():
    dist = np.zeros((1, 2), np.float32)
    with pytest.raises(ValueError, match="max_rank"):
        regdb_metrics(dist, np.array([1]), np.array([1, 2]), max_rank=0)
    with pytest.raises(ValueError, match="chunk_size"):
        regdb_metrics(dist, np.array([1]), np.array([1, 2]), chunk_size=0)
    with pytest.raises(ValueError, match="q_camids"):
        rank_metrics(dist, np.array([1]), np.array([1, 2]), excluded_camera_pairs=[(3, 2)])


# ------------------------------------------------------------------- aggregation
def _metrics(cmc, mAP, mINP):
    cmc = np.asarray(cmc, float)
    return RankMetrics(cmc=cmc, cmc_standard=cmc, mAP=mAP, mINP=mINP, num_valid_queries=1, num_queries=1)


def test_aggregate_trials_mean_and_std():
    a = _metrics(np.linspace(0.1, 0.29, 20), 0.4, 0.2)
    b = _metrics(np.linspace(0.3, 0.49, 20), 0.6, 0.3)
    s = aggregate_trials([a, b])
    assert s.num_trials == 2
    assert s.mean["R1"] == pytest.approx(0.2)
    assert s.std["R1"] == pytest.approx(0.1)  # population std of {0.1, 0.3}
    assert s.mean["R20"] == pytest.approx((0.29 + 0.49) / 2)
    assert s.mean["R10"] == pytest.approx((0.19 + 0.39) / 2)
    assert s.mean["mAP"] == pytest.approx(0.5) and s.std["mAP"] == pytest.approx(0.1)
    assert s.mean["mINP"] == pytest.approx(0.25) and s.std["mINP"] == pytest.approx(0.05)
    assert set(s.mean) == {"R1", "R5", "R10", "R20", "mAP", "mINP"}
    np.testing.assert_allclose(s.cmc_mean, (a.cmc + b.cmc) / 2)


def test_aggregate_trials_errors():
    with pytest.raises(ValueError, match="empty"):
        aggregate_trials([])
    with pytest.raises(ValueError, match="below 1"):
        aggregate_trials([_metrics(np.ones(10), 1, 1)], ranks=(0, 1))


def test_aggregate_trials_extends_short_curves_with_their_last_value():
    short = _metrics(np.array([0.5, 0.75, 1.0]), 0.6, 0.4)      # a 3-image gallery
    full = _metrics(np.linspace(0.1, 0.48, 20), 0.5, 0.3)
    s = aggregate_trials([short, full])
    assert s.mean["R1"] == pytest.approx((0.5 + 0.1) / 2)
    assert s.mean["R10"] == pytest.approx((1.0 + full.cmc[9]) / 2)
    assert s.mean["R20"] == pytest.approx((1.0 + 0.48) / 2)
    assert s.cmc_mean.shape == (20,) and s.cmc_mean[5] == pytest.approx((1.0 + full.cmc[5]) / 2)
