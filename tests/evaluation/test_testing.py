"""Protocol sets from manifests, and metrics of features over trials."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.synth import synthesize
from vireid.data.scan import scan
from vireid.evaluation.testing import evaluate_sets, regdb_sets, sysu_sets


@pytest.fixture(scope="module")
def sysu_manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("sysu") / "SYSU-MM01"
    synthesize("sysu", root, ids=12, seed=3)
    return scan("sysu", root)


@pytest.fixture(scope="module")
def regdb_manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("regdb") / "RegDB"
    synthesize("regdb", root, ids=8, seed=3, images_per_camera=3)
    return scan("regdb", root)


def identity_features(manifest, noise: float, seed: int = 0):
    """Features = the identity's one-hot code plus noise; rows in manifest order."""
    rng = np.random.default_rng(seed)
    pids = sorted({r.pid for r in manifest.records})
    code = {p: i for i, p in enumerate(pids)}
    f = np.zeros((len(manifest.records), len(pids)))
    for i, r in enumerate(manifest.records):
        f[i, code[r.pid]] = 1.0
    f += noise * rng.standard_normal(f.shape)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    return f, {r.path: i for i, r in enumerate(manifest.records)}


def test_sysu_sets_follow_the_protocol(sysu_manifest):
    test_ids = set(sysu_manifest.splits["id_lists"]["test"])
    sets = sysu_sets(sysu_manifest, "all", "single")
    assert sets.trials == list(range(10)) and len(sets.galleries) == 10
    assert {s.cam for s in sets.query} <= {3, 6} and {s.pid for s in sets.query} <= test_ids
    for g in sets.galleries:
        assert {s.cam for s in g} <= {1, 2, 4, 5} and {s.pid for s in g} <= test_ids
        per = {}
        for s in g:
            per[(s.pid, s.cam)] = per.get((s.pid, s.cam), 0) + 1
        assert set(per.values()) == {1}                       # single shot
    indoor = sysu_sets(sysu_manifest, "indoor", "multi", trials=[0, 1])
    assert all({s.cam for s in g} <= {1, 2} for g in indoor.galleries)
    assert sum(len(g) for g in indoor.galleries) > sum(len(g) for g in sets.galleries[:2]) / 4


def test_perfect_features_give_perfect_scores(sysu_manifest):
    feats, row_of = identity_features(sysu_manifest, noise=0.0)
    res = evaluate_sets(sysu_sets(sysu_manifest, "all", "single", trials=[0, 1, 2]), {"f_id": feats}, row_of, "sysu")
    s = res.summary["f_id"]
    assert s.num_trials == 3 and s.mean["R1"] == 1.0 and s.mean["mAP"] == 1.0 and s.std["mAP"] == 0.0


def test_noisier_features_score_lower(sysu_manifest):
    sets = sysu_sets(sysu_manifest, "all", "multi", trials=[0, 1])
    scores = []
    for noise in (0.05, 0.5, 5.0):
        feats, row_of = identity_features(sysu_manifest, noise, seed=1)
        scores.append(evaluate_sets(sets, {"f": feats}, row_of, "sysu").summary["f"].mean["mAP"])
    assert scores[0] > scores[1] > scores[2]


def test_regdb_directions(regdb_manifest):
    v2t = regdb_sets(regdb_manifest, trial=2, direction="v2t")
    t2v = regdb_sets(regdb_manifest, trial=2, direction="t2v")
    assert {s.path.split("/")[0] for s in v2t.query} == {"Visible"}
    assert {s.path.split("/")[0] for s in t2v.query} == {"Thermal"}
    assert len(v2t.query) == len(t2v.galleries[0])
    feats, row_of = identity_features(regdb_manifest, noise=0.0)
    res = evaluate_sets(v2t, {"f_all": feats}, row_of, "regdb")
    assert res.summary["f_all"].mean["R1"] == 1.0
    with pytest.raises(ValueError, match="no RegDB trial 11"):
        regdb_sets(regdb_manifest, trial=11)


def test_missing_features_named(sysu_manifest):
    feats, row_of = identity_features(sysu_manifest, noise=0.0)
    sets = sysu_sets(sysu_manifest, "all", "single", trials=[0])
    row_of = dict(row_of)
    del row_of[sets.query[0].path]
    with pytest.raises(ValueError, match=sets.query[0].path):
        evaluate_sets(sets, {"f": feats}, row_of, "sysu")
