"""The keypoints estimator: side file and COCO-style files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.estimators import build_estimator
from pipeline.estimators.base import EstimatorError
from pipeline.estimators.keypoints import KeypointFileEstimator
from vireid.pose.convert import COCO17_NAMES
from vireid.pose.joints import JOINT_INDEX, JOINT_NAMES
from tests.pose.test_convert import coco_person


def test_side_file_visibility_to_confidence(tmp_path):
    rows = [[float(j), float(2 * j), 2] for j in range(16)]
    rows[3] = [None, None, 0]                 # missing
    rows[4] = [4.0, 8.0, 1]                   # occluded: position known
    (tmp_path / "vireid_keypoints.json").write_text(json.dumps(
        {"format": "vireid-keypoints/1", "joints": list(JOINT_NAMES), "images": {"a/b.jpg": rows}}))
    est = build_estimator("keypoints", root=tmp_path)
    out = est.estimate([np.zeros((4, 4, 3), np.uint8)], ["a/b.jpg"])
    assert out.shape == (1, 16, 3) and out.dtype == np.float32
    assert np.isnan(out[0, 3, :2]).all() and out[0, 3, 2] == 0
    np.testing.assert_allclose(out[0, 4], [4, 8, 1])
    assert len(est.describe()["weights_sha256"]) == 64
    with pytest.raises(EstimatorError, match="no keypoints for a/c.jpg"):
        est.estimate([np.zeros((4, 4, 3), np.uint8)], ["a/c.jpg"])


def test_coco_file_with_coco17_names_picks_best_annotation(tmp_path):
    good = coco_person()
    kps = [v for x, y, c in good for v in (x, y, 2)]
    worse = [v for x, y, c in good for v in (x + 100, y, 2)]
    doc = {"images": [{"id": 5, "file_name": "cam1/0001/0001.jpg"}],
           "annotations": [{"image_id": 5, "keypoints": worse, "score": 0.2},
                           {"image_id": 5, "keypoints": kps, "score": 0.8}],
           "categories": [{"name": "person", "keypoints": list(COCO17_NAMES)}]}
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(doc))
    out = KeypointFileEstimator(path).estimate([None], ["cam1/0001/0001.jpg"])[0]
    np.testing.assert_allclose(out[JOINT_INDEX["B_Neck"]], [10, 10 - 0.5 * 6.4, 1])       # S + (C - S) / 2
    np.testing.assert_allclose(out[JOINT_INDEX["R_Ankle"]], [7, 40, 1])


def test_bad_files_named(tmp_path):
    with pytest.raises(EstimatorError, match="keypoint file not found"):
        KeypointFileEstimator(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [], "annotations": [{"image_id": 1, "keypoints": []}],
                               "categories": [{"keypoints": list(COCO17_NAMES)}]}))
    with pytest.raises(EstimatorError, match="unknown image_id 1"):
        KeypointFileEstimator(bad)
