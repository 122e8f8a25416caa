"""Dataset specifications: package data, parsed once into a typed protocol that the test
protocols, the metrics and the scanners read."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

import vireid.evaluation.metrics as metrics_mod
from vireid.data.spec import DATASETS, SpecError, load_spec, manifests_dir, parse_spec
from vireid.evaluation import rank_metrics, sysu_excluded_camera_pairs, sysu_metrics


def test_specs_are_package_data():
    assert manifests_dir() == Path(metrics_mod.__file__).parents[2] / "data_manifests"
    for name in DATASETS:
        assert load_spec(name).source == manifests_dir() / f"{name}.yaml"


def test_protocols_typed_from_the_yaml():
    sysu = load_spec("sysu").evaluation
    assert sysu.trials == tuple(range(10))                     # first_trial 0, 10 trials
    assert sysu.query_cameras == ("cam3", "cam6")
    assert sysu.gallery_cameras == {"all": ("cam1", "cam2", "cam4", "cam5"), "indoor": ("cam1", "cam2")}
    assert sysu.multi_shot == 10
    assert sysu.excluded_camera_pairs == ((3, 2),)             # {query_camera: cam3, gallery_camera: cam2}
    regdb = load_spec("regdb").evaluation
    assert regdb.trials == tuple(range(1, 11))
    assert regdb.directions == {"v2t": ("Visible", "Thermal"), "t2v": ("Thermal", "Visible")}
    assert load_spec("lip").evaluation is None
    assert sysu_excluded_camera_pairs() == ((3, 2),)


def _sysu_doc() -> dict:
    return yaml.safe_load(load_spec("sysu").source.read_text())


@pytest.mark.parametrize("edit,match", [
    (lambda p: p["exclusions"].append({"query_camera": "cam9", "gallery_camera": "cam2"}),
     r"protocol.exclusions\[1\]: 'cam9' is not a declared camera"),
    (lambda p: p["gallery_cameras"].update(all=["cam1", "rgb"]), r"protocol.gallery_cameras.all: 'rgb'"),
    (lambda p: p.update(trials=0), "protocol.trials must be a positive integer"),
    (lambda p: p.pop("first_trial"), "missing key 'first_trial'"),
    (lambda p: p["shots"].update(multi="ten"), "protocol.shots.multi"),
])
def test_protocol_errors_name_the_key(edit, match):
    doc = _sysu_doc()
    edit(doc["protocol"])
    with pytest.raises(SpecError, match=match):
        parse_spec(doc, Path("sysu.yaml"))


def test_sysu_metrics_read_the_exclusions_of_the_spec(monkeypatch):
    rng = np.random.default_rng(0)
    dist = rng.random((6, 12)).astype(np.float32)
    qp, gp = np.array([1, 2, 3, 1, 2, 3]), np.tile([1, 2, 3], 4)
    qc, gc = np.array([3, 3, 3, 6, 6, 6]), np.repeat([1, 2, 4, 5], 3)
    with_pair = sysu_metrics(dist, qp, gp, qc, gc)
    assert with_pair.mAP == rank_metrics(dist, qp, gp, qc, gc, excluded_camera_pairs=[(3, 2)],
                                         deduplicate_cmc=True).mAP
    spec = load_spec("sysu")
    no_pairs = dataclasses.replace(spec, evaluation=dataclasses.replace(spec.evaluation, excluded_camera_pairs=()))
    monkeypatch.setattr(metrics_mod, "load_spec", lambda name: no_pairs)
    without = sysu_metrics(dist, qp, gp, qc, gc)
    assert without.mAP == rank_metrics(dist, qp, gp, qc, gc, deduplicate_cmc=True).mAP != with_pair.mAP
