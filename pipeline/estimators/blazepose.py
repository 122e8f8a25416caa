"""The ``blazepose`` estimator: mediapipe 0.10.21's BlazePose (legacy ``mp.solutions.pose``).

BlazePose runs on CPU from the models bundled in the mediapipe wheel: the person
detector ``pose_detection.tflite`` and, for the default ``model_complexity=1``, the
landmark model ``pose_landmark_full.tflite``. The lite (0) and heavy (2) landmark models
are not in the wheel and mediapipe would download them at run time; this estimator never
lets it (it raises :class:`EstimatorError` unless the file is already in place).
mediapipe 0.10.21 is the last release that ships the full model, so the ``blazepose``
extra pins it. Each crop is processed on its own (``static_image_mode=True``: a fresh
person detection per image, no tracking between crops); mediapipe reports at most one
person, the most prominent.

Input preparation. The detector letterboxes the image to its square input by itself,
so a crop goes in as it is. Measured on the 24 real 288x144 crops of ``shared/images``
(``min_detection_confidence=0.3``; a person found in colour / grey / inverted grey):
as is 24 / 24 / 21, every one with head above neck above pelvis above ankles; padded to a
square 24 / 24 / 21 (joints within 0.3 px median of the unpadded ones); upscaled 2x
24 / 24 / 21. Shrunk to RegDB's 128x64: as is 24 / 23 / 20, padded 24 / 22 / 18,
upscaled back to 288x144 23 / 23 / 19. Neither padding nor upscaling helps, so neither is
the default; ``pad_to_square=True`` stays as an option (recorded by ``describe()``).
Speed: about 30 crops/s here (2 CPU cores, one crop at a time).

Mapping of the 33 BlazePose landmarks to the 16 LIP joints: BlazePose's landmarks
contain COCO's 17 keypoints (nose 0, eyes 2/5, ears 7/8, shoulders 11/12, elbows 13/14,
wrists 15/16, hips 23/24, knees 25/26, ankles 27/28), with the person's own left/right
like LIP (checked on a crop of a person facing the camera: their right side is on the
image's left). The LIP joints come from those through the one mapping of
:mod:`vireid.pose.convert` (limbs directly; pelvis, thorax, upper neck and top of head
derived from shoulders, hips and face, as documented there).

Confidence = the landmark's ``visibility`` (mediapipe's in-frame-and-unoccluded score in
[0, 1]). A derived joint's confidence is the minimum of its sources' confidences, with
C's taken as the *maximum* over the five face points (the head is where it is even when
the face is turned away): pelvis = min(hips), spine = min(shoulders, hips), neck =
min(shoulders, C), head = min(shoulders, hips, C). A joint whose point falls outside the
input image (e.g. feet cut off by the crop) is reported missing, ``(nan, nan, 0)``, as is
every joint of a crop where no person was detected. Coordinates: mediapipe's normalised
x, y times the width/height, minus 0.5 (mediapipe's 0 is the left edge of the image, ours
the centre of the first pixel).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from pipeline.estimators.base import EstimatorError, PoseEstimator
from vireid.io import file_sha256
from vireid.pose import convert
from vireid.pose.joints import NUM_JOINTS

log = logging.getLogger(__name__)

MEDIAPIPE_VERSION = "0.10.21"
#: mediapipe's declared requirements would add a second OpenCV (opencv-contrib-python), jax,
#: jaxlib, sentencepiece, sounddevice, absl-py and flatbuffers, none of which the pose solution
#: imports; it needs only these two beside what vireid has (numpy<2, OpenCV, matplotlib)
INSTALL_HINT = (f"pip install --no-deps mediapipe=={MEDIAPIPE_VERSION} 'protobuf>=4.25.3,<5' 'attrs>=19.1.0' "
                "(the 'blazepose' extra)")

#: landmark model per ``model_complexity``, as a path inside the mediapipe wheel
LANDMARK_MODELS = {
    0: "modules/pose_landmark/pose_landmark_lite.tflite",
    1: "modules/pose_landmark/pose_landmark_full.tflite",
    2: "modules/pose_landmark/pose_landmark_heavy.tflite",
}
DETECTOR_MODEL = "modules/pose_detection/pose_detection.tflite"

#: BlazePose's landmark index of each of COCO's 17 keypoints (same names, same meaning)
COCO17_IN_BLAZEPOSE = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
FACE = COCO17_IN_BLAZEPOSE[:5]   # nose, left eye, right eye, left ear, right ear
MAPPING_ID = f"blazepose33-as-coco17 + {convert.MAPPING_ID}"
SPINE_FRACTION, NECK_FRACTION, HEAD_RAISE = convert.SPINE_FRACTION, convert.NECK_FRACTION, convert.HEAD_RAISE


def lip_from_blazepose(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(33, 3)`` BlazePose rows (x, y normalised to [0, 1], visibility) of an image of
    ``height`` x ``width`` -> ``(16, 3)`` float32 LIP rows (x, y in pixels, confidence),
    ``(nan, nan, 0)`` for a joint outside the image. BlazePose's 33 landmarks contain
    COCO's 17; the LIP joints are derived from those by :func:`vireid.pose.convert.lip_from_coco17`."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (33, 3):
        raise ValueError(f"expected (33, 3) BlazePose landmarks, got {lm.shape}")
    pts = np.column_stack([lm[:, 0] * width - 0.5, lm[:, 1] * height - 0.5, np.clip(lm[:, 2], 0.0, 1.0)])
    # a landmark mediapipe could not place (NaN) is missing; visibility 0 too
    pts[~np.isfinite(pts).all(axis=1)] = (np.nan, np.nan, 0.0)
    out = convert.lip_from_coco17(pts[list(COCO17_IN_BLAZEPOSE)]).astype(np.float64)
    x, y = out[:, 0], out[:, 1]
    outside = ~((x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5))
    out[outside] = (np.nan, np.nan, 0.0)
    return out.astype(np.float32)


def pad_square(image: np.ndarray) -> "tuple[np.ndarray, int, int]":
    """Centre ``image`` on a black square canvas; returns the canvas and the (x, y) offset."""
    h, w = image.shape[:2]
    side = max(h, w)
    x0, y0 = (side - w) // 2, (side - h) // 2
    canvas = np.zeros((side, side) + image.shape[2:], dtype=image.dtype)
    canvas[y0:y0 + h, x0:x0 + w] = image
    return canvas, x0, y0


def _import_mediapipe() -> Any:
    try:
        import mediapipe  # optional: the 'blazepose' extra
        from mediapipe.python.solutions import pose as mp_pose  # noqa: F401
    except ImportError as exc:
        raise EstimatorError(f"--estimator blazepose needs mediapipe {MEDIAPIPE_VERSION} and the 'blazepose' "
                             f"extra ({exc}); install them with: {INSTALL_HINT}") from None
    return mediapipe


class BlazePoseEstimator(PoseEstimator):
    """BlazePose (mediapipe 0.10.21, CPU) mapped to the 16 LIP joints (see the module docstring)."""

    name = "blazepose"
    batch_size = 16  # images go through one at a time; this only sets the job's chunking

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.3,
                 pad_to_square: bool = False) -> None:
        if model_complexity not in LANDMARK_MODELS:
            raise EstimatorError(f"model_complexity must be 0, 1 or 2, got {model_complexity!r}")
        if not 0.0 <= min_detection_confidence <= 1.0:
            raise EstimatorError(f"min_detection_confidence must be in [0, 1], got {min_detection_confidence}")
        mediapipe = _import_mediapipe()
        self.mediapipe_version = str(getattr(mediapipe, "__version__", "unknown"))
        if self.mediapipe_version != MEDIAPIPE_VERSION:
            log.warning("mediapipe %s found; the blazepose estimator is pinned to %s",
                        self.mediapipe_version, MEDIAPIPE_VERSION)
        root = Path(mediapipe.__file__).resolve().parent
        self.model_complexity = model_complexity
        self.min_detection_confidence = float(min_detection_confidence)
        self.pad_to_square = bool(pad_to_square)
        self.weights = "mediapipe/" + LANDMARK_MODELS[model_complexity]
        self.detector_weights = "mediapipe/" + DETECTOR_MODEL
        landmark_file, detector_file = root / LANDMARK_MODELS[model_complexity], root / DETECTOR_MODEL
        for path in (landmark_file, detector_file):
            if not path.is_file():
                raise EstimatorError(
                    f"{path} is missing: mediapipe {self.mediapipe_version} does not ship it and this "
                    f"estimator never downloads models (use model_complexity=1, bundled in mediapipe "
                    f"{MEDIAPIPE_VERSION}, or put the file there yourself)")
        self.weights_sha256 = file_sha256(landmark_file)
        self.detector_sha256 = file_sha256(detector_file)
        self._pose: Optional[Any] = mediapipe.solutions.pose.Pose(
            static_image_mode=True, model_complexity=model_complexity, smooth_landmarks=False,
            enable_segmentation=False, min_detection_confidence=self.min_detection_confidence)
        log.info("blazepose: mediapipe %s, %s (sha256 %s...)", self.mediapipe_version, self.weights,
                 self.weights_sha256[:12])

    def describe(self) -> Dict[str, Any]:
        return {"estimator": self.name, "weights": self.weights, "weights_sha256": self.weights_sha256,
                "detector_weights": self.detector_weights, "detector_sha256": self.detector_sha256,
                "mediapipe_version": self.mediapipe_version, "model_complexity": self.model_complexity,
                "min_detection_confidence": self.min_detection_confidence,
                "pad_to_square": self.pad_to_square, "mapping": MAPPING_ID}

    def estimate_one(self, image: np.ndarray) -> np.ndarray:
        """One BGR uint8 crop -> ``(16, 3)`` float32 LIP rows (all missing if nobody is found)."""
        if self._pose is None:
            raise EstimatorError("the blazepose estimator was closed")
        img = np.asarray(image)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise EstimatorError(f"expected a BGR uint8 image H x W x 3, got {img.dtype} {img.shape}")
        h, w = img.shape[:2]
        x0 = y0 = 0
        if self.pad_to_square:
            img, x0, y0 = pad_square(img)
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        result = self._pose.process(rgb)
        if not result.pose_landmarks:
            return lip_from_blazepose(np.full((33, 3), np.nan), h, w)
        lm = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)
        if x0 or y0:  # back from the square canvas to the crop's normalised coordinates
            side = img.shape[0]
            lm[:, 0] = (lm[:, 0] * side - x0) / w
            lm[:, 1] = (lm[:, 1] * side - y0) / h
        return lip_from_blazepose(lm, h, w)

    def estimate(self, images: Sequence[np.ndarray], paths: Sequence[str]) -> np.ndarray:
        if len(images) != len(paths):
            raise EstimatorError(f"{len(images)} images but {len(paths)} paths")
        rows: List[np.ndarray] = []
        for image, path in zip(images, paths):
            try:
                rows.append(self.estimate_one(image))
            except EstimatorError as exc:
                raise EstimatorError(f"{path}: {exc}") from None
        if not rows:
            return np.zeros((0, NUM_JOINTS, 3), np.float32)
        found = sum(bool(r[:, 2].any()) for r in rows)
        log.debug("blazepose: a person in %d of %d crops", found, len(rows))
        return np.stack(rows).astype(np.float32)

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None
