"""The ``blazepose`` estimator: its landmark mapping (no mediapipe needed) and BlazePose
itself on the 24 real crops of ``shared/images/pedestrians`` in colour, grey and
inverted grey (grey-scale stands in for infrared).

Measured here (mediapipe 0.10.21, model_complexity=1, min_detection_confidence=0.3):
a person in 24/24 colour, 24/24 grey, 21/24 inverted-grey crops, every one plausible;
pad_to_square: 24/24/21 too; crops shrunk to 128x64: 24 colour. The thresholds below
leave a margin of two or three crops.

Skipped when mediapipe is not importable, except with ``VIREID_REQUIRE_BLAZEPOSE=1`` (CI
installs the extra), where that is a failure.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np
import pytest

from pipeline.estimators.base import EstimatorError
from pipeline.estimators import blazepose as bp
from vireid.pose.joints import JOINT_INDEX as J, NUM_JOINTS, flip_keypoints

REQUIRE = os.environ.get("VIREID_REQUIRE_BLAZEPOSE") == "1"


def _mediapipe_problem() -> Optional[str]:
    try:
        import mediapipe  # noqa: F401
        from mediapipe.python.solutions import pose  # noqa: F401
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


MISSING = _mediapipe_problem()


def _need_mediapipe() -> None:
    if MISSING is None:
        return
    if REQUIRE:
        pytest.fail(f"VIREID_REQUIRE_BLAZEPOSE=1 but mediapipe is not importable ({MISSING}): {bp.INSTALL_HINT}")
    pytest.skip(f"mediapipe (the 'blazepose' extra) is not installed ({MISSING})")


def test_mediapipe_present_when_required() -> None:
    if not REQUIRE:
        pytest.skip("VIREID_REQUIRE_BLAZEPOSE is not 1: the blazepose extra is optional here")
    assert MISSING is None, f"mediapipe is not importable ({MISSING}): {bp.INSTALL_HINT}"


# --------------------------------------------------------------------------- mapping
def _landmarks() -> np.ndarray:
    """33 synthetic landmarks (normalised x, y, visibility) of an upright figure in a
    100 (wide) x 200 (high) image."""
    lm = np.full((33, 3), [0.5, 0.5, 0.9])
    pix = {  # pixel edges (x, y) as mediapipe means them; the expected output subtracts 0.5
        0: (50, 30), 2: (46, 26), 5: (54, 26), 7: (42, 30), 8: (58, 30),       # face: centre (50, 28.4)
        11: (65, 60), 12: (35, 60), 13: (70, 90), 14: (30, 90), 15: (72, 115), 16: (28, 115),
        23: (60, 120), 24: (40, 120), 25: (61, 155), 26: (39, 155), 27: (62, 190), 28: (38, 190),
    }
    for k, (x, y) in pix.items():
        lm[k, :2] = (x / 100, y / 200)
    return lm


def test_direct_joints_are_the_person_s_own_sides() -> None:
    out = bp.lip_from_blazepose(_landmarks(), 200, 100)
    assert out.shape == (NUM_JOINTS, 3) and out.dtype == np.float32
    # BlazePose 12 = right shoulder, 11 = left; 28 = right ankle, 27 = left
    np.testing.assert_allclose(out[J["R_Shoulder"], :2], [34.5, 59.5])
    np.testing.assert_allclose(out[J["L_Shoulder"], :2], [64.5, 59.5])
    np.testing.assert_allclose(out[J["R_Ankle"], :2], [37.5, 189.5])
    np.testing.assert_allclose(out[J["L_Ankle"], :2], [61.5, 189.5])
    np.testing.assert_allclose(out[J["R_Wrist"], :2], [27.5, 114.5])
    np.testing.assert_allclose(out[J["L_Knee"], :2], [60.5, 154.5])


def test_derived_joints_follow_the_documented_fractions() -> None:
    out = bp.lip_from_blazepose(_landmarks(), 200, 100)
    s, p, c = np.array([49.5, 59.5]), np.array([49.5, 119.5]), np.array([49.5, 27.9])
    np.testing.assert_allclose(out[J["B_Pelvis"], :2], p, atol=1e-4)
    np.testing.assert_allclose(out[J["B_Spine"], :2], s + bp.SPINE_FRACTION * (p - s), atol=1e-4)
    np.testing.assert_allclose(out[J["B_Neck"], :2], s + bp.NECK_FRACTION * (c - s), atol=1e-4)
    # upright torso: "up" is -y; the face centre is 31.6 px above the shoulders
    np.testing.assert_allclose(out[J["B_Head"], :2], c + [0.0, -bp.HEAD_RAISE * 31.6], atol=1e-4)
    ys = out[[J["B_Head"], J["B_Neck"], J["B_Spine"], J["B_Pelvis"]], 1]
    assert np.all(np.diff(ys) > 0), ys


def test_head_is_raised_along_the_torso_axis_not_towards_the_face() -> None:
    lm = _landmarks()
    lm[list(bp.FACE), 0] += 0.08  # face in profile: its points shifted 8 px to the image right
    out = bp.lip_from_blazepose(lm, 200, 100)
    head, face_x = out[J["B_Head"]], 49.5 + 8
    assert head[0] == pytest.approx(face_x, abs=1e-4)  # straight up from the face centre
    assert head[1] < out[J["B_Neck"], 1]


def test_confidences_min_of_sources_face_max() -> None:
    lm = _landmarks()
    lm[11, 2], lm[12, 2] = 0.8, 0.6     # shoulders
    lm[23, 2], lm[24, 2] = 0.7, 0.95    # hips
    lm[list(bp.FACE), 2] = [0.1, 0.2, 0.3, 0.4, 0.5]
    lm[16, 2] = 1.7                     # clipped into [0, 1]
    out = bp.lip_from_blazepose(lm, 200, 100)
    assert out[J["B_Pelvis"], 2] == pytest.approx(0.7)
    assert out[J["B_Spine"], 2] == pytest.approx(0.6)
    assert out[J["B_Neck"], 2] == pytest.approx(0.5)
    assert out[J["B_Head"], 2] == pytest.approx(0.5)
    assert out[J["R_Shoulder"], 2] == pytest.approx(0.6)
    assert out[J["R_Wrist"], 2] == pytest.approx(1.0)


def test_joints_outside_the_image_and_no_person_are_missing() -> None:
    lm = _landmarks()
    lm[28, 1] = 1.2   # right ankle below the crop
    lm[15, 0] = -0.1  # left wrist left of it
    out = bp.lip_from_blazepose(lm, 200, 100)
    for name in ("R_Ankle", "L_Wrist"):
        assert np.isnan(out[J[name], :2]).all() and out[J[name], 2] == 0
    assert np.isfinite(out[J["L_Ankle"], :2]).all()
    none = bp.lip_from_blazepose(np.full((33, 3), np.nan), 200, 100)
    assert np.isnan(none[:, :2]).all() and (none[:, 2] == 0).all()
    with pytest.raises(ValueError):
        bp.lip_from_blazepose(np.zeros((17, 3)), 200, 100)


def test_pad_square_centres_the_crop() -> None:
    img = np.arange(6 * 3 * 3, dtype=np.uint8).reshape(6, 3, 3)
    canvas, x0, y0 = bp.pad_square(img)
    assert canvas.shape == (6, 6, 3) and (x0, y0) == (1, 0)
    np.testing.assert_array_equal(canvas[:, 1:4], img)
    assert not canvas[:, 0].any() and not canvas[:, 4:].any()


def test_missing_mediapipe_is_a_clear_estimator_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe` raise ImportError
    with pytest.raises(EstimatorError, match=r"pip install --no-deps mediapipe==0\.10\.21"):
        bp.BlazePoseEstimator()


def test_bad_options_are_refused() -> None:
    with pytest.raises(EstimatorError, match="model_complexity"):
        bp.BlazePoseEstimator(model_complexity=3)
    with pytest.raises(EstimatorError, match="min_detection_confidence"):
        bp.BlazePoseEstimator(min_detection_confidence=1.5)


# --------------------------------------------------------------------------- BlazePose itself
MIN_FOUND = {"colour": 22, "grey": 22, "inverted": 18}   # measured 24, 24, 21


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


MODES = {"colour": lambda im: im, "grey": _grey, "inverted": lambda im: 255 - _grey(im)}


@pytest.fixture(scope="module")
def estimator():
    _need_mediapipe()
    est = bp.BlazePoseEstimator()
    yield est
    est.close()


@pytest.fixture(scope="module")
def crops(shared_dir: Path) -> Dict[str, List]:
    paths = sorted((shared_dir / "images" / "pedestrians").glob("*.png"))
    assert len(paths) == 24, f"expected the 24 pedestrian crops, found {len(paths)}"
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
    assert all(im is not None and im.shape == (288, 144, 3) for im in images)
    return {"paths": [p.name for p in paths], "images": images}


@pytest.fixture(scope="module")
def results(estimator, crops) -> Dict[str, np.ndarray]:
    return {mode: estimator.estimate([f(im) for im in crops["images"]], crops["paths"])
            for mode, f in MODES.items()}


def _found(kp: np.ndarray) -> np.ndarray:
    return kp[:, :, 2].max(axis=1) > 0


@pytest.mark.shared
@pytest.mark.parametrize("mode", list(MODES))
def test_a_person_is_found_in_most_crops(results, mode: str) -> None:
    kp = results[mode]
    assert kp.shape == (24, NUM_JOINTS, 3) and kp.dtype == np.float32
    assert _found(kp).sum() >= MIN_FOUND[mode], f"{mode}: a person in {_found(kp).sum()}/24 crops"


@pytest.mark.shared
@pytest.mark.parametrize("mode", list(MODES))
def test_found_joints_are_finite_inside_and_confidences_in_range(results, mode: str) -> None:
    kp = results[mode]
    conf = kp[:, :, 2]
    assert ((conf >= 0) & (conf <= 1)).all()
    seen = conf > 0
    assert np.isfinite(kp[seen][:, :2]).all() and np.isnan(kp[~seen][:, :2]).all()
    x, y = kp[seen][:, 0], kp[seen][:, 1]
    assert (x >= -0.5).all() and (x <= 143.5).all() and (y >= -0.5).all() and (y <= 287.5).all()
    # a detected person has all four axis joints
    found = _found(kp)
    axis = [J["B_Head"], J["B_Neck"], J["B_Pelvis"]]
    assert (conf[found][:, axis] > 0).all()


@pytest.mark.shared
@pytest.mark.parametrize("mode", list(MODES))
def test_head_above_neck_above_pelvis_above_ankles(results, mode: str) -> None:
    kp = results[mode][_found(results[mode])]
    ankles_y = np.nanmean(kp[:, [J["R_Ankle"], J["L_Ankle"]], 1], axis=1)
    ok = ((kp[:, J["B_Head"], 1] < kp[:, J["B_Neck"], 1])
          & (kp[:, J["B_Neck"], 1] < kp[:, J["B_Spine"], 1])
          & (kp[:, J["B_Spine"], 1] < kp[:, J["B_Pelvis"], 1])
          & (kp[:, J["B_Pelvis"], 1] < ankles_y))
    allowed = 0 if mode == "colour" else 1  # measured: every found crop plausible in all three
    assert (~ok).sum() <= allowed, f"{mode}: {(~ok).sum()} implausible of {len(ok)}"


@pytest.mark.shared
@pytest.mark.parametrize("mode", list(MODES))
def test_body_proportions_are_plausible(results, mode: str) -> None:
    kp = results[mode][_found(results[mode])]
    shoulders = np.linalg.norm(kp[:, J["R_Shoulder"], :2] - kp[:, J["L_Shoulder"], :2], axis=1)
    torso = np.linalg.norm(kp[:, J["B_Neck"], :2] - kp[:, J["B_Pelvis"], :2], axis=1)
    assert (shoulders > 0).all() and (shoulders < 0.5 * 144).all(), shoulders   # measured 2..38 px
    assert (shoulders < torso).all(), shoulders / torso                          # measured <= 0.67
    assert ((torso > 0.05 * 288) & (torso < 0.5 * 288)).all(), torso             # measured 25..73 px
    # the HOG crops centre their walker: the pelvis lies in the middle half of the width
    assert ((kp[:, J["B_Pelvis"], 0] > 36) & (kp[:, J["B_Pelvis"], 0] < 108)).all()


@pytest.mark.shared
def test_left_and_right_are_the_person_s_own(results, crops) -> None:
    """vtest_f081_04 faces the camera (their right on the image's left); vtest_f081_03
    walks away from it (their right on the image's right)."""
    kp = results["colour"]
    facing = crops["paths"].index("vtest_f081_04.png")
    away = crops["paths"].index("vtest_f081_03.png")
    for a, b in (("R_Shoulder", "L_Shoulder"), ("R_Hip", "L_Hip")):
        assert kp[facing, J[a], 0] < kp[facing, J[b], 0]
        assert kp[away, J[a], 0] > kp[away, J[b], 0]


@pytest.mark.shared
def test_mirrored_crop_gives_mirrored_joints(estimator, crops, results) -> None:
    mirrored = estimator.estimate([im[:, ::-1].copy() for im in crops["images"]], crops["paths"])
    back = flip_keypoints(mirrored, 144)
    both = _found(results["colour"]) & _found(mirrored)
    assert both.sum() >= MIN_FOUND["colour"]
    dist = np.linalg.norm(back[both, :, :2] - results["colour"][both, :, :2], axis=-1)
    assert np.nanmedian(dist) < 4.0, np.nanmedian(dist)


@pytest.mark.shared
def test_padding_to_square_does_not_help(crops, results) -> None:
    """The choice of no padding: padding finds no more people and (its coordinates mapped
    back to the crop) the same joints."""
    _need_mediapipe()
    padded = bp.BlazePoseEstimator(pad_to_square=True)
    try:
        for mode in ("colour", "inverted"):
            kp = padded.estimate([MODES[mode](im) for im in crops["images"]], crops["paths"])
            assert _found(kp).sum() <= _found(results[mode]).sum()
            both = _found(kp) & _found(results[mode])
            dist = np.linalg.norm(kp[both, :, :2] - results[mode][both, :, :2], axis=-1)
            assert np.nanmedian(dist) < 2.0, (mode, np.nanmedian(dist))   # measured 0.3 colour
        assert padded.describe()["pad_to_square"] is True
    finally:
        padded.close()


@pytest.mark.shared
def test_regdb_sized_crops_are_found(estimator, crops) -> None:
    small = [cv2.resize(im, (64, 128), interpolation=cv2.INTER_AREA) for im in crops["images"]]
    kp = estimator.estimate(small, crops["paths"])
    assert _found(kp).sum() >= 21   # measured 24
    seen = kp[:, :, 2] > 0
    assert (kp[seen][:, 0] <= 63.5).all() and (kp[seen][:, 1] <= 127.5).all()


def test_blank_images_have_no_person(estimator) -> None:
    blanks = [np.zeros((288, 144, 3), np.uint8), np.full((128, 64, 3), 128, np.uint8)]
    kp = estimator.estimate(blanks, ["black.png", "grey.png"])
    assert kp.shape == (2, NUM_JOINTS, 3) and kp.dtype == np.float32
    assert np.isnan(kp[:, :, :2]).all() and (kp[:, :, 2] == 0).all()


def test_empty_batch_and_bad_input(estimator) -> None:
    empty = estimator.estimate([], [])
    assert empty.shape == (0, NUM_JOINTS, 3) and empty.dtype == np.float32
    with pytest.raises(EstimatorError, match="odd.png"):
        estimator.estimate([np.zeros((10, 10), np.uint8)], ["odd.png"])
    with pytest.raises(EstimatorError, match="paths"):
        estimator.estimate([np.zeros((10, 10, 3), np.uint8)], [])


def test_describe_records_the_bundled_models(estimator) -> None:
    import mediapipe

    d = estimator.describe()
    assert d["estimator"] == "blazepose" == estimator.name
    assert d["mediapipe_version"] == bp.MEDIAPIPE_VERSION and d["model_complexity"] == 1
    assert d["min_detection_confidence"] == pytest.approx(0.3) and d["pad_to_square"] is False
    root = Path(mediapipe.__file__).resolve().parent.parent
    for key, sha in (("weights", "weights_sha256"), ("detector_weights", "detector_sha256")):
        assert d[key].startswith("mediapipe/") and d[key].endswith(".tflite")
        assert len(d[sha]) == 64 and int(d[sha], 16) >= 0
        assert d[sha] == hashlib.sha256((root / d[key]).read_bytes()).hexdigest()
    assert d["weights"].endswith("pose_landmark_full.tflite")
    assert str(bp.NECK_FRACTION) in d["mapping"]


def test_models_not_in_the_wheel_are_never_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    _need_mediapipe()
    import urllib.request

    import mediapipe

    heavy = Path(mediapipe.__file__).resolve().parent / bp.LANDMARK_MODELS[2]
    if heavy.exists():
        pytest.skip(f"{heavy} was put there by hand")

    def no_network(*args, **kwargs):
        raise AssertionError("the blazepose estimator tried to download a model")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(EstimatorError, match="never downloads"):
        bp.BlazePoseEstimator(model_complexity=2)
    assert not heavy.exists()


def test_closed_estimator_refuses_work() -> None:
    _need_mediapipe()
    est = bp.BlazePoseEstimator()
    est.close()
    est.close()  # idempotent
    with pytest.raises(EstimatorError, match="closed"):
        est.estimate([np.zeros((64, 32, 3), np.uint8)], ["a.png"])
