"""LLCM's ranking metrics: golden values of the reference code (DEEN's eval_llcm), a
hand-computed case, vectorised == per-query loop, and the error contract."""
from __future__ import annotations

import numpy as np
import pytest

from vireid.evaluation import llcm_metrics, sysu_metrics
from vireid.evaluation._kernel_llcm import _in_place_plan
from vireid.evaluation.metrics import RankMetrics
from vireid.evaluation.reference_llcm import llcm_metrics_loop

GOLDEN_LLCM = ["eval_llcm_1000.npz", "eval_llcm_1001.npz", "eval_llcm_1002.npz"]
VIS_CAMERAS = np.arange(1, 10)
NIR_CAMERAS = np.array([1, 2, 4, 5, 6, 7, 8, 9])


def _assert_same(a: RankMetrics, b: RankMetrics, tol: float = 1e-9) -> None:
    np.testing.assert_allclose(a.cmc, b.cmc, rtol=0, atol=tol)
    np.testing.assert_allclose(a.cmc_standard, b.cmc_standard, rtol=0, atol=tol)
    assert a.mAP == pytest.approx(b.mAP, abs=tol)
    assert a.mINP == pytest.approx(b.mINP, abs=tol)
    assert a.num_valid_queries == b.num_valid_queries
    assert a.num_queries == b.num_queries


# --------------------------------------------------------------------------- golden
@pytest.mark.shared
@pytest.mark.parametrize("name", GOLDEN_LLCM)
@pytest.mark.parametrize("impl", [llcm_metrics, llcm_metrics_loop])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_llcm_matches_golden(golden_dir, name, impl, dtype):
    z = np.load(golden_dir / name)
    r = impl(z["distmat"].astype(dtype), z["q_pids"], z["g_pids"], z["q_camids"], z["g_camids"])
    np.testing.assert_allclose(r.cmc, z["cmc"], rtol=0, atol=1e-6)
    assert r.mAP == pytest.approx(float(z["mAP"]), abs=1e-6)
    assert r.mINP == pytest.approx(float(z["mINP"]), abs=1e-6)
    assert r.num_queries == len(z["q_pids"])


@pytest.mark.shared
@pytest.mark.parametrize("name", GOLDEN_LLCM)
def test_golden_valid_queries_follow_the_identity_and_camera_rule(golden_dir, name):
    """A query counts when its identity has a gallery image from another camera number;
    eval_llcm_1002 holds queries without one. Both directions are covered."""
    z = np.load(golden_dir / name)
    r = llcm_metrics(z["distmat"], z["q_pids"], z["g_pids"], z["q_camids"], z["g_camids"])
    expected = sum(
        bool(np.any((z["g_pids"] == pid) & (z["g_camids"] != cam)))
        for pid, cam in zip(z["q_pids"], z["q_camids"])
    )
    assert r.num_valid_queries == expected
    ir_rows = bool(z["ir_to_vis"])  # which modality the rows are: infrared has no camera 3
    assert (3 in z["q_camids"]) != ir_rows and (3 in z["g_camids"]) == ir_rows
    if name == "eval_llcm_1002.npz":
        assert expected < len(z["q_pids"])


# ------------------------------------------------------------------ hand-computed
@pytest.mark.parametrize("impl", [llcm_metrics, llcm_metrics_loop])
def test_hand_computed_two_queries(impl):
    # gallery:  idx  0  1  2  3
    #           pid  1  2  1  2
    #           cam  1  2  2  1
    g_pids = np.array([1, 2, 1, 2])
    g_cams = np.array([1, 2, 2, 1])
    dist = np.array(
        [
            [0.1, 0.2, 0.3, 0.4],  # query A: pid 1, camera 1 -> ranking 0 1 2 3
            [0.1, 0.3, 0.2, 0.4],  # query B: pid 2, camera 2 -> ranking 0 2 1 3
        ],
        dtype=np.float32,
    )
    r = impl(dist, np.array([1, 2]), g_pids, np.array([1, 2]), g_cams, max_rank=4)
    # A drops image 0 (pid 1, cam 1) but keeps 3 (cam 1, other identity): pids 2 1 2
    #   -> first match at 2; de-duplicated 2 1 -> at 2; AP 1/2, INP 1/2.
    # B drops image 1 (pid 2, cam 2) but keeps 2 (cam 2, other identity): pids 1 1 2
    #   -> first match at 3; de-duplicated 1 2 -> at 2; AP 1/3, INP 1/3.
    np.testing.assert_allclose(r.cmc_standard, [0, 0.5, 1, 1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.cmc, [0, 1, 1, 1], rtol=0, atol=1e-12)
    assert r.mAP == pytest.approx((1 / 2 + 1 / 3) / 2, abs=1e-12)
    assert r.mINP == pytest.approx((1 / 2 + 1 / 3) / 2, abs=1e-12)
    assert r.num_valid_queries == 2 and r.num_queries == 2

    # Nothing dropped for a camera no gallery image has: A ranks 1 2 1 2 -> hits at 1 and 3.
    r3 = impl(dist[:1], np.array([1]), g_pids, np.array([3]), g_cams, max_rank=4)
    np.testing.assert_array_equal(r3.cmc_standard, [1, 1, 1, 1])
    assert r3.mAP == pytest.approx((1 + 2 / 3) / 2, abs=1e-12)
    assert r3.mINP == pytest.approx(2 / 3, abs=1e-12)


@pytest.mark.parametrize("impl", [llcm_metrics, llcm_metrics_loop])
def test_query_whose_matches_all_share_its_camera_is_skipped(impl):
    dist = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]], dtype=np.float32)
    g_pids, g_cams = np.array([1, 2, 2]), np.array([4, 5, 6])
    # query 0: pid 1 camera 4, its only image is camera 4 -> not valid
    r = impl(dist, np.array([1, 2]), g_pids, np.array([4, 5]), g_cams, max_rank=3)
    assert r.num_valid_queries == 1 and r.num_queries == 2
    np.testing.assert_array_equal(r.cmc_standard, [1, 1, 1])  # query 1 ranks 2(cam 6) first
    assert r.mAP == 1.0 and r.mINP == 1.0


# ------------------------------------------------------------ vectorised == loop
def _random_problem(seed: int, num_q: int, num_g: int, num_ids: int, levels: int, ir_rows: bool):
    """Queries of one modality, gallery of the other; identities drawn at random, so some
    queries find no image of theirs, or only images of their own camera number."""
    rng = np.random.default_rng(seed)
    q_cams_pool, g_cams_pool = (NIR_CAMERAS, VIS_CAMERAS) if ir_rows else (VIS_CAMERAS, NIR_CAMERAS)
    q_pids = rng.integers(0, num_ids + 2, num_q)
    g_pids = rng.integers(0, num_ids, num_g)
    q_cams = rng.choice(q_cams_pool, num_q)
    g_cams = rng.choice(g_cams_pool[:4], num_g)  # few cameras: many own-camera matches
    dist = (rng.integers(0, levels, (num_q, num_g)) / levels).astype(np.float32)
    return dist, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk_size", [None, 1, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorised_equals_loop(seed, chunk_size, dtype):
    dist, qp, gp, qc, gc = _random_problem(seed, 60, 45, 8, [5, 40, 1000][seed], ir_rows=seed != 1)
    dist = dist.astype(dtype)
    fast = llcm_metrics(dist, qp, gp, qc, gc, chunk_size=chunk_size)
    _assert_same(fast, llcm_metrics_loop(dist, qp, gp, qc, gc))


def _grouped_problem(seed: int, per_cam: int, num_ids: int = 6, num_q: int = 40):
    """A gallery ordered by identity and camera, as the sampled galleries are."""
    rng = np.random.default_rng(seed)
    g_pids = np.repeat(np.arange(num_ids), 4 * per_cam)
    g_cams = np.tile(np.repeat([1, 2, 4, 5], per_cam), num_ids)
    q_pids = rng.integers(0, num_ids, num_q)
    q_cams = rng.choice([1, 2, 3, 6], num_q)
    dist = rng.standard_normal((num_q, len(g_pids))).astype(np.float32)
    dist -= 2.0 * (q_pids[:, None] == g_pids[None, :])  # correct matches rank early, not always
    return dist, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("per_cam", [1, 4])
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("chunk_size", [None, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # float64: the lexsort path
def test_vectorised_equals_loop_grouped_and_shuffled_gallery(per_cam, workers, chunk_size, dtype):
    dist, qp, gp, qc, gc = _grouped_problem(per_cam, per_cam)
    dist = dist.astype(dtype)
    fast = llcm_metrics(dist, qp, gp, qc, gc, chunk_size=chunk_size, workers=workers)
    _assert_same(fast, llcm_metrics_loop(dist, qp, gp, qc, gc))
    # in identity order but cameras mixed inside each identity: the kept images are no run
    mixed = np.random.default_rng(3).permutation(gc)
    args = (dist, qp, gp, qc, mixed)
    _assert_same(llcm_metrics(*args, chunk_size=chunk_size, workers=workers), llcm_metrics_loop(*args))
    # columns shuffled: not in identity order, one class per query camera
    cols = np.random.default_rng(9).permutation(len(gp))
    args = (dist[:, cols], qp, gp[cols], qc, gc[cols])
    _assert_same(llcm_metrics(*args, chunk_size=chunk_size, workers=workers), llcm_metrics_loop(*args))
    rows = np.arange(len(qp))
    assert _in_place_plan(qp, gp, qc, gc, rows, 1 << 18, None) is not None  # both paths run above
    assert _in_place_plan(qp, gp[cols], qc, gc[cols], rows, 1 << 18, None) is None


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
    """Dropped images tie with kept ones here: they must still leave every rank alone."""
    dist, qp, gp, qc, gc = _grouped_problem(5, 3)
    dist = make(dist.astype(np.float64)).astype(dtype)
    _assert_same(llcm_metrics(dist, qp, gp, qc, gc), llcm_metrics_loop(dist, qp, gp, qc, gc))


def test_result_is_bit_identical_whatever_the_chunks_and_workers():
    dist, qp, gp, qc, gc = _random_problem(5, 300, 120, 20, 1000, ir_rows=True)
    ref = llcm_metrics(dist, qp, gp, qc, gc)
    for chunk_size, workers in ((1, 1), (7, 2), (None, 2), (64, 3)):
        got = llcm_metrics(dist, qp, gp, qc, gc, chunk_size=chunk_size, workers=workers)
        assert got.mAP == ref.mAP and got.mINP == ref.mINP, (chunk_size, workers)
        assert np.array_equal(got.cmc, ref.cmc) and np.array_equal(got.cmc_standard, ref.cmc_standard)


def test_differs_from_sysu_rule():
    """SYSU-MM01's camera-pair rule keeps own-camera matches of a camera-1 query."""
    dist = np.array([[0.1, 0.2, 0.3]], dtype=np.float32)
    args = (dist, np.array([1]), np.array([1, 2, 1]), np.array([1]), np.array([1, 1, 2]))
    assert sysu_metrics(*args, max_rank=3).cmc[0] == 1.0
    assert llcm_metrics(*args, max_rank=3).cmc[0] == 0.0


def test_caller_distances_are_not_modified():
    dist, qp, gp, qc, gc = _grouped_problem(2, 2)
    before = dist.copy()
    llcm_metrics(dist, qp, gp, qc, gc)
    np.testing.assert_array_equal(dist, before)


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize("impl", [llcm_metrics, llcm_metrics_loop])
def test_errors(impl):
    dist = np.zeros((1, 2), np.float32)
    with pytest.raises(ValueError, match="q_camids and g_camids"):
        impl(dist, np.array([1]), np.array([1, 2]), None, np.array([1, 2]))
    with pytest.raises(ValueError, match="g_camids"):
        impl(dist, np.array([1]), np.array([1, 2]), np.array([1]), np.array([1]))
    with pytest.raises(ValueError, match="no valid query"):  # the only match shares the camera
        impl(dist, np.array([1]), np.array([1, 2]), np.array([1]), np.array([1, 2]))
    with pytest.raises(ValueError, match="max_rank"):
        impl(dist, np.array([1]), np.array([1, 2]), np.array([1]), np.array([2, 2]), max_rank=0)


@pytest.mark.parametrize("workers", [1, 2])
def test_non_finite_distances_anywhere_are_refused(workers):
    """A NaN is found in a row no chunk ranks and in a dropped (own identity and camera) column."""
    dist, qp, gp, qc, gc = _grouped_problem(0, 2)
    for where in ("skipped row", "dropped column", "ranked row"):
        d, q = dist.copy(), qp.copy()
        if where == "skipped row":
            q[7] = 99
            d[7, 3] = np.nan
        elif where == "dropped column":
            row = int(np.flatnonzero(qc == 1)[0])
            d[row, int(np.flatnonzero((gp == qp[row]) & (gc == 1))[0])] = np.nan
        else:
            d[-1, -1] = np.inf
        with pytest.raises(ValueError, match="NaN|infinite"):
            llcm_metrics(d, q, gp, qc, gc, workers=workers, chunk_size=4)
    with pytest.raises(ValueError, match="chunk_size"):
        llcm_metrics(dist, qp, gp, qc, gc, chunk_size=0)
