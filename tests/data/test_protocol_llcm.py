"""LLCM test-set selection: query and per-trial gallery against the golden sampling of
the reference data_manager (DEEN), the directions' roles, and the argument contract."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from vireid.data.protocol import Sample, llcm_gallery, llcm_query
from vireid.data.protocol_llcm import (
    LLCM_CAMERAS,
    LLCM_TRIALS,
    llcm_ranking_lists,
    parse_llcm_test_ids,
)


@pytest.fixture(scope="module")
def sampling(golden_dir):
    with open(golden_dir / "llcm_sampling_1000.json", encoding="utf-8") as handle:
        return json.load(handle)


def _as_lists(samples):
    return {"paths": [s.path for s in samples], "pids": [s.pid for s in samples],
            "cams": [s.cam for s in samples]}


@pytest.mark.shared
@pytest.mark.parametrize("mode,folder", [("1", "test_vis"), ("2", "test_nir")])
def test_llcm_query_matches_golden(sampling, mode, folder):
    assert sampling["modes"][mode] == folder
    query = llcm_query(sampling["layout"], sampling["test_ids"], folder)
    assert _as_lists(query) == sampling["query"][mode]


@pytest.mark.shared
@pytest.mark.parametrize("mode,folder", [("1", "test_vis"), ("2", "test_nir")])
def test_llcm_gallery_matches_golden_every_trial(sampling, mode, folder):
    expected = sampling["gallery"][mode]
    assert sorted(expected, key=int) == [str(t) for t in LLCM_TRIALS]  # trials 0..9
    for trial in LLCM_TRIALS:
        gallery = llcm_gallery(sampling["layout"], sampling["test_ids"], folder, trial)
        assert _as_lists(gallery) == expected[str(trial)], f"{folder} trial {trial}"
    assert sampling["layout"]["test_nir"].keys() == set(LLCM_CAMERAS["test_nir"])  # no cam3


@pytest.mark.shared
@pytest.mark.parametrize("trial", [0, 7])
def test_directions_pair_the_golden_lists_as_the_reference(sampling, trial):
    layout, ids = sampling["layout"], sampling["test_ids"]
    rows, cols = llcm_ranking_lists(layout, ids, "ir_to_vis", trial)
    assert _as_lists(rows) == sampling["query"]["2"]  # every test_nir image
    assert _as_lists(cols) == sampling["gallery"]["1"][str(trial)]  # the test_vis sample
    rows, cols = llcm_ranking_lists(layout, ids, "vis_to_ir", trial)
    assert _as_lists(rows) == sampling["gallery"]["2"][str(trial)]  # swapped: the test_nir sample
    assert _as_lists(cols) == sampling["query"]["1"]  # every test_vis image


# A small layout for the properties the golden file does not cover.
LAYOUT = {
    "test_vis": {
        "cam1": {"0001": ["c.jpg", "a.jpg", "b.jpg"], "0002": [f"{i:04d}.jpg" for i in range(12, 0, -1)]},
        "cam3": {"0001": ["v3.jpg"]},
        "cam10": {"0001": ["not_read.jpg"]},
    },
    "test_nir": {
        "cam2": {"0002": ["n2.jpg"]},
        "cam3": {"0001": ["not_a_reference_camera.jpg"]},
        "cam9": {"0001": ["y.jpg", "x.jpg"], "0009": ["not_a_test_id.jpg"]},
    },
}


def test_query_order_labels_and_cameras():
    assert llcm_query(LAYOUT, [2, 1], "test_nir") == [
        Sample("test_nir/cam9/0001/x.jpg", 1, 9),
        Sample("test_nir/cam9/0001/y.jpg", 1, 9),
        Sample("test_nir/cam2/0002/n2.jpg", 2, 2),
    ]
    vis = llcm_query(LAYOUT, ["0001"], "test_vis")
    assert [s.path for s in vis] == [
        "test_vis/cam1/0001/a.jpg", "test_vis/cam1/0001/b.jpg", "test_vis/cam1/0001/c.jpg",
        "test_vis/cam3/0001/v3.jpg",
    ]
    custom = llcm_query(LAYOUT, [1], "test_nir", cameras=["cam3"])
    assert custom == [Sample("test_nir/cam3/0001/not_a_reference_camera.jpg", 1, 3)]


def test_gallery_is_a_seeded_choice_over_sorted_files():
    rng = random.Random(4)
    expected = [
        f"test_vis/cam1/0001/{rng.choice(['a.jpg', 'b.jpg', 'c.jpg'])}",
        f"test_vis/cam3/0001/{rng.choice(['v3.jpg'])}",
        f"test_vis/cam1/0002/{rng.choice(sorted(LAYOUT['test_vis']['cam1']['0002']))}",
    ]
    got = llcm_gallery(LAYOUT, [1, 2], "test_vis", trial=4)
    assert [s.path for s in got] == expected
    assert [(s.pid, s.cam) for s in got] == [(1, 1), (1, 3), (2, 1)]
    trials = {tuple(s.path for s in llcm_gallery(LAYOUT, [1, 2], "test_vis", t)) for t in LLCM_TRIALS}
    assert len(trials) > 1


def test_gallery_does_not_touch_global_random_state():
    random.seed(123)
    before = random.random()
    random.seed(123)
    llcm_gallery(LAYOUT, [1, 2], "test_nir", trial=0)
    assert random.random() == before


def test_parse_test_ids():
    assert parse_llcm_test_ids("3,17,1064\n") == [3, 17, 1064]
    from_file = llcm_query(LAYOUT, parse_llcm_test_ids("2,1"), "test_nir")
    assert from_file == llcm_query(LAYOUT, [1, 2], "test_nir")
    with pytest.raises(ValueError, match="empty"):
        parse_llcm_test_ids("")
    with pytest.raises(ValueError, match="'x'"):
        parse_llcm_test_ids("1,x,3")


def test_ranking_lists_feed_the_metrics_with_the_rows_as_queries():
    """vis_to_ir: the rows (queries) are the sampled infrared images, the columns every
    visible image."""
    from vireid.evaluation import llcm_metrics
    from vireid.evaluation.reference_llcm import llcm_metrics_loop

    rows, cols = llcm_ranking_lists(LAYOUT, [1, 2], "vis_to_ir", 0)
    assert {s.path.split("/")[0] for s in rows} == {"test_nir"}
    assert {s.path.split("/")[0] for s in cols} == {"test_vis"}
    dist = np.random.default_rng(0).random((len(rows), len(cols))).astype(np.float32)
    q_pids, g_pids = np.array([s.pid for s in rows]), np.array([s.pid for s in cols])
    q_cams, g_cams = np.array([s.cam for s in rows]), np.array([s.cam for s in cols])
    fast = llcm_metrics(dist, q_pids, g_pids, q_cams, g_cams)
    slow = llcm_metrics_loop(dist, q_pids, g_pids, q_cams, g_cams)
    assert fast.num_queries == len(rows) and fast.num_valid_queries == slow.num_valid_queries
    assert fast.mAP == pytest.approx(slow.mAP, abs=1e-12)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: llcm_query(LAYOUT, [1], "test_ir"), "folder must be one of"),
        (lambda: llcm_query({"test_vis": {}}, [1], "test_nir"), "no 'test_nir' folder"),
        (lambda: llcm_query(LAYOUT, [7], "test_vis"), "no query image"),
        (lambda: llcm_query(LAYOUT, [1], "test_vis", cameras=["ir3"]), "camN"),
        (lambda: llcm_gallery(LAYOUT, [1], "test_vis", -1), "trial"),
        (lambda: llcm_gallery(LAYOUT, [1], "test_vis", 1.5), "trial"),
        (lambda: llcm_gallery(LAYOUT, [7], "test_vis", 0), "no gallery image"),
        (lambda: llcm_gallery({"test_vis": {"cam1": {"0001": []}}}, [1], "test_vis", 0), "empty identity"),
        (lambda: llcm_ranking_lists(LAYOUT, [1], "v2t", 0), "direction must be one of"),
        (lambda: llcm_query(LAYOUT, [1, "0001"], "test_vis"), "repeated"),
    ],
)
def test_argument_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
