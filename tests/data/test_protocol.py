"""Test-set selection: SYSU-MM01 query/gallery against the golden sampling of the
reference data_manager.py, multi-shot, and RegDB test lists; cameras and trials from the
dataset specifications."""
from __future__ import annotations

import json
import random

import pytest

from vireid.data.protocol import Sample, normalise_sysu_ids, regdb_test_lists, sysu_gallery, sysu_query
from vireid.data.spec import load_spec

SYSU = load_spec("sysu").evaluation


@pytest.fixture(scope="module")
def sampling(golden_dir):
    with open(golden_dir / "sysu_sampling_1000.json", encoding="utf-8") as handle:
        return json.load(handle)


@pytest.mark.shared
@pytest.mark.parametrize("mode", ["all", "indoor"])
def test_sysu_query_matches_golden(sampling, mode):
    query = sysu_query(sampling["layout"], sampling["test_ids"], mode)
    assert [s.path for s in query] == sampling["query"][mode]
    for s in query:
        cam, pid, _ = s.path.split("/")
        assert s.cam == int(cam[3:]) and s.cam in (3, 6)
        assert s.pid == int(pid)


@pytest.mark.shared
@pytest.mark.parametrize("mode", ["all", "indoor"])
def test_sysu_single_shot_gallery_matches_golden_every_trial(sampling, mode):
    expected = sampling["gallery"][mode]
    assert sorted(expected, key=int) == [str(t) for t in SYSU.trials]  # trials 0..9
    for trial in SYSU.trials:
        gallery = sysu_gallery(sampling["layout"], sampling["test_ids"], mode, trial)
        assert [s.path for s in gallery] == expected[str(trial)], f"mode {mode} trial {trial}"
        assert {s.cam for s in gallery} <= {int(c[3:]) for c in SYSU.gallery_cameras[mode]}


@pytest.mark.shared
def test_string_and_int_ids_give_the_same_lists(sampling):
    as_str = ["%04d" % i for i in sampling["test_ids"]][::-1]
    assert sysu_gallery(sampling["layout"], as_str, "all", 3) == sysu_gallery(
        sampling["layout"], sampling["test_ids"], "all", 3
    )


# A small layout for the properties the golden file does not cover.
LAYOUT = {
    "cam1": {"0001": ["c.jpg", "a.jpg", "b.jpg"], "0002": [f"{i:04d}.jpg" for i in range(25, 0, -1)]},
    "cam2": {"0002": ["x.jpg"]},
    "cam3": {"0001": ["q2.jpg", "q1.jpg"]},
    "cam4": {"0001": ["z.jpg"]},
    "cam6": {"0002": ["r.jpg"], "0009": ["not_a_test_id.jpg"]},
}


def test_query_order_and_labels():
    query = sysu_query(LAYOUT, [2, 1])
    assert query == [
        Sample("cam3/0001/q1.jpg", 1, 3),
        Sample("cam3/0001/q2.jpg", 1, 3),
        Sample("cam6/0002/r.jpg", 2, 6),
    ]


def test_single_shot_uses_seeded_choice_over_sorted_files():
    rng = random.Random(5)
    expected = [
        f"cam1/0001/{rng.choice(['a.jpg', 'b.jpg', 'c.jpg'])}",
        f"cam4/0001/{rng.choice(['z.jpg'])}",
        f"cam1/0002/{rng.choice(sorted(LAYOUT['cam1']['0002']))}",
        f"cam2/0002/{rng.choice(['x.jpg'])}",
    ]
    got = sysu_gallery(LAYOUT, [1, 2], "all", trial=5)
    assert [s.path for s in got] == expected
    indoor = sysu_gallery(LAYOUT, [1, 2], "indoor", trial=5)
    assert {s.cam for s in indoor} == {1, 2}


def test_multi_shot_samples_up_to_ten_per_identity_and_camera():
    got = sysu_gallery(LAYOUT, [1, 2], "all", trial=2, shot="multi")
    rng = random.Random(2)
    expected = [f"cam1/0001/{n}" for n in rng.sample(["a.jpg", "b.jpg", "c.jpg"], 3)]
    expected += [f"cam4/0001/{n}" for n in rng.sample(["z.jpg"], 1)]
    expected += [f"cam1/0002/{n}" for n in rng.sample(sorted(LAYOUT["cam1"]["0002"]), 10)]
    expected += [f"cam2/0002/{n}" for n in rng.sample(["x.jpg"], 1)]
    assert [s.path for s in got] == expected
    per_camera = [s for s in got if s.path.startswith("cam1/0002/")]
    assert len(per_camera) == 10 and len({s.path for s in per_camera}) == 10
    assert len(sysu_gallery(LAYOUT, [2], "all", 2, shot="multi", num_shots=3)) == 3 + 1


def test_gallery_does_not_touch_global_random_state():
    random.seed(123)
    before = random.random()
    random.seed(123)
    sysu_gallery(LAYOUT, [1, 2], "all", trial=0)
    assert random.random() == before


def test_trials_differ():
    galleries = {tuple(s.path for s in sysu_gallery(LAYOUT, [1, 2], "all", t)) for t in SYSU.trials}
    assert len(galleries) > 1


def test_custom_cameras_from_a_manifest():
    got = sysu_gallery(LAYOUT, [1, 2], "outdoor", 0, gallery_cameras={"outdoor": ["cam4"]})
    assert [s.path for s in got] == ["cam4/0001/z.jpg"]
    query = sysu_query(LAYOUT, [1, 2, 9], query_cameras=["cam6"])
    assert [s.path for s in query] == ["cam6/0002/r.jpg", "cam6/0009/not_a_test_id.jpg"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(mode="outdoor"), "mode"),
        (dict(shot="double"), "shot"),
        (dict(trial=-1), "trial"),
        (dict(trial=1.5), "trial"),
        (dict(num_shots=0, shot="multi"), "num_shots"),
    ],
)
def test_gallery_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sysu_gallery(LAYOUT, [1, 2], **kwargs)


def test_id_and_layout_errors():
    with pytest.raises(ValueError, match="test_ids"):
        normalise_sysu_ids(["12a"])
    with pytest.raises(ValueError, match="repeated"):
        normalise_sysu_ids([1, "0001"])
    with pytest.raises(ValueError, match="empty"):
        normalise_sysu_ids([])
    with pytest.raises(ValueError, match="no query image"):
        sysu_query(LAYOUT, [7])
    with pytest.raises(ValueError, match="empty identity folder"):
        sysu_gallery({"cam1": {"0001": []}}, [1])
    with pytest.raises(ValueError, match="camN"):
        sysu_query({"ir3": {"0001": ["a.jpg"]}}, [1], query_cameras=["ir3"])
    with pytest.raises(ValueError, match="mode"):
        sysu_query(LAYOUT, [1], mode="outdoor")


# ----------------------------------------------------------------------- RegDB
# one trial's test lists as the scanner stores them in the manifest
TABLE = {"test:visible": [["Visible/1/a.bmp", 0], ["Visible/2/b.bmp", 1]],
         "test:thermal": [["Thermal/1/a.bmp", 0], ["Thermal/2/b.bmp", 1]]}


def test_regdb_directions():
    query, gallery = regdb_test_lists(TABLE, "v2t")
    assert query == [Sample("Visible/1/a.bmp", 0, 1), Sample("Visible/2/b.bmp", 1, 1)]
    assert gallery == [Sample("Thermal/1/a.bmp", 0, 2), Sample("Thermal/2/b.bmp", 1, 2)]
    t_query, t_gallery = regdb_test_lists(TABLE, "t2v")
    assert t_query == gallery and t_gallery == query


def test_regdb_errors():
    with pytest.raises(ValueError, match="direction must be one of"):
        regdb_test_lists(TABLE, "v2v")
    with pytest.raises(ValueError, match="no test:thermal index list"):
        regdb_test_lists({"test:visible": TABLE["test:visible"]}, "v2t")
