"""The heatmap codec and GCCPM's input fit: how images and keypoints meet the pose networks, in one place.

Input fit (GCCPM's LIP recipe, its ``datasets/transformations.py`` and ``val.py``): an
``h x w`` image enters the square ``size x size`` input through one affine map
(:func:`fit_matrix`) that scales it so its longer side is ``size`` and centres it, the
rest grey :data:`PAD_VALUE` (0 after :func:`normalise_input`, ``(BGR - 128) / 256``).
LIP training composes its random rotation and scale into the same matrix; without them
it is exactly the inference fit (:func:`prepare_input`, used by the ``lip`` estimator
and by the LIP validation), so the estimator sees crops as it was trained on them.

Every producer of joint maps (the LIP training targets, the heatmap cache) encodes with
:meth:`HeatmapCodec.encode`, and every consumer (the LIP estimator, its validation, the
PCKh of heatmaps, the pose picture) decodes with :meth:`HeatmapCodec.decode`; a codec is
``input_size`` (the input the maps belong to), ``stride`` (input pixels per map cell) and
``sigma`` (the Gaussian's, in input pixels; only encoding needs it).

Grid convention (GCCPM's ``datasets/lip.py``, ``shift = stride / 2 - 0.5``): map cell
``(r, c)`` of a stride-``s`` map covers input pixels ``[c*s, (c+1)*s)``, and its centre
is at input pixel ``c*s + s/2 - 0.5`` (pixel centres at integer coordinates, so pixel
``x`` spans ``[x - 0.5, x + 0.5)``). Equivalently, an input pixel ``x`` sits at map
coordinate ``(x + 0.5) / s - 0.5``: the plain ``x / s`` of mmpose-style code measured
with pixel *edges* at integers and cell centres at ``c + 0.5``. A joint at input pixel ``(x, y)`` gives
``exp(-d^2 / (2 sigma^2))`` at each cell, ``d`` the distance from the cell centre in
input pixels and ``sigma`` in input pixels, so the peak is 1 where a cell centre
falls on the joint; values below 0.01 (exponent > ln 100) are set to 0, as GCCPM
does. A missing joint (NaN or zero weight) gives an all-zero map and a zero target
weight.

Decoding: each joint is its map's argmax cell centre, moved a quarter of a cell towards
the larger of its two neighbours on each axis (the usual sub-cell refinement of heatmap
decoders); border cells are not moved along that axis. For a Gaussian away from the
border this is within a quarter of a cell of the true position. A map whose maximum is
0 (a missing joint) decodes to its first cell with score 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

#: GCCPM's output stride (its maps are 1/8 of its input)
STRIDE = 8
#: grey of the padding and of masked regions: 0 after :func:`normalise_input`
PAD_VALUE = 128
#: The paper's geometry of the joint model (Section IV-A): 288x144 crops and stride-4 heatmaps
#: (72x36), the defaults of :class:`vireid.cache.geometry.Geometry` and of the model's configuration
PAPER_INPUT_SIZE: Tuple[int, int] = (288, 144)
PAPER_HEATMAP_STRIDE = 4
CUTOFF_EXPONENT = math.log(100.0)


# ---------------------------------------------------------------- input fit
def check_input_side(size: int, stride: int = STRIDE) -> None:
    """Raise ``ValueError`` unless ``size`` is a square input side GCCPM can take: a
    multiple of its output ``stride`` and at least 32."""
    if size < 32 or size % stride:
        raise ValueError(f"input size {size} must be a multiple of {stride} and at least 32")


def fit_matrix(height: int, width: int, size: int, angle_deg: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """2x3 affine from the pixels of a ``height x width`` image to those of the ``size x size``
    input (pixel centres at integers).

    Rotation by ``angle_deg`` (counter-clockwise as displayed, OpenCV's sense) and scaling
    by ``scale`` about the image centre; the rotated image's bounding box (``h|sin| + w|cos|``
    by ``h|cos| + w|sin|``) is fitted to ``size`` and centred. With the defaults this is the
    plain fit: ``x' = f (x - (w - 1)/2) + (size - 1)/2`` and likewise for y, ``f = size / max(h, w)``.
    """
    theta = math.radians(angle_deg)
    c, s = abs(math.cos(theta)), abs(math.sin(theta))
    bound_w, bound_h = height * s + width * c, height * c + width * s
    fit = size / max(bound_w, bound_h)
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    m = cv2.getRotationMatrix2D(centre, angle_deg, fit * scale)
    m[0, 2] += (size - 1) / 2.0 - centre[0]
    m[1, 2] += (size - 1) / 2.0 - centre[1]
    return m.astype(np.float64)


def transform_points(xy: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to points ``(..., 2)``; NaN stays NaN."""
    xy = np.asarray(xy, np.float64)
    return xy @ matrix[:, :2].T + matrix[:, 2]


@dataclass(frozen=True, eq=False)
class InputFit:
    """How an image was fitted to the square input: ``matrix`` (2x3, image -> input pixels)."""

    image_hw: Tuple[int, int]
    size: int
    matrix: np.ndarray

    @property
    def inverse(self) -> np.ndarray:
        """2x3 affine from input pixels back to image pixels."""
        return cv2.invertAffineTransform(self.matrix).astype(np.float64)

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """Image pixel coordinates ``(..., 2)`` -> input pixel coordinates."""
        return transform_points(xy, self.matrix)

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Input pixel coordinates ``(..., 2)`` -> image pixel coordinates."""
        return transform_points(xy, self.inverse)

    def cells(self, stride: int = STRIDE) -> Tuple[int, int, int, int]:
        """``(row0, row1, col0, col1)``: the cells of a stride-``stride`` map that the image
        covers (the others hold only padding), for :meth:`HeatmapCodec.decode`'s ``within``."""
        h, w = self.image_hw
        corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]])
        edges = self.to_input(corners) + 0.5                 # pixel edges: input pixel i spans [i, i + 1)
        lo, hi = edges.min(axis=0) / stride, edges.max(axis=0) / stride
        n = self.size // stride
        c0, r0 = (max(0, int(math.floor(v + 1e-6))) for v in lo)
        c1, r1 = (min(n, int(math.ceil(v - 1e-6))) for v in hi)
        return r0, r1, c0, c1


def fit_image(height: int, width: int, size: int) -> InputFit:
    """The inference fit of a ``height x width`` image (:func:`fit_matrix` without augmentation)."""
    return InputFit((int(height), int(width)), int(size), fit_matrix(height, width, size))


def warp_input(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``size x size`` uint8 input: ``image`` warped by ``matrix`` (bilinear), grey elsewhere."""
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(PAD_VALUE,) * 3)


def normalise_input(image: np.ndarray) -> np.ndarray:
    """GCCPM's input normalisation: HxWx3 uint8 BGR -> 3xHxW float32 ``(pixel - 128) / 256``."""
    return ((image.astype(np.float32) - 128.0) / 256.0).transpose(2, 0, 1).copy()


def prepare_input(image_bgr: np.ndarray, size: int) -> Tuple[np.ndarray, InputFit]:
    """Fit an HxWx3 BGR image to GCCPM's square input as LIP training does without augmentation.

    Returns the normalised ``3 x size x size`` float32 input and the :class:`InputFit`
    that maps keypoints back (a 2:1 crop becomes ``size x size/2`` centred between grey
    columns, a wide crop ``size`` columns centred between grey rows).
    """
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 BGR image, got shape {image_bgr.shape}")
    fit = fit_image(image_bgr.shape[0], image_bgr.shape[1], size)
    return normalise_input(warp_input(image_bgr, fit.matrix, size)), fit


# ---------------------------------------------------------------- heatmaps


def cell_centres(n: int, stride: float) -> np.ndarray:
    """Input-pixel coordinates of the centres of ``n`` cells along one axis."""
    return np.arange(n, dtype=np.float64) * stride + (stride / 2.0 - 0.5)


@dataclass(frozen=True)
class HeatmapCodec:
    """Keypoints in input pixels <-> joint maps of ``input_size / stride`` cells.

    ``input_size`` is ``(H, W)`` in input pixels, a multiple of ``stride``; ``sigma`` (input
    pixels) is needed only to encode (None: a decode-only codec).
    """

    input_size: Tuple[int, int]
    stride: int
    sigma: Optional[float] = None

    def __post_init__(self) -> None:
        if not (float(self.stride) == int(self.stride) and int(self.stride) > 0):
            raise ValueError(f"stride must be a positive integer (got {self.stride})")
        stride = int(self.stride)
        h, w = (int(v) for v in self.input_size)
        if h <= 0 or w <= 0 or h % stride or w % stride:
            raise ValueError(f"input size {h}x{w} is not a positive multiple of the stride {stride}")
        if self.sigma is not None and not self.sigma > 0:
            raise ValueError(f"sigma must be positive (got {self.sigma})")
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "input_size", (h, w))
        if self.sigma is not None:
            object.__setattr__(self, "sigma", float(self.sigma))

    @property
    def map_size(self) -> Tuple[int, int]:
        """``(h, w)`` cells of a map."""
        return self.input_size[0] // self.stride, self.input_size[1] // self.stride

    # ------------------------------------------------------------------ encoding
    def encode(self, keypoints: np.ndarray, weights: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``keypoints`` (J, 2 or 3) input pixels, ``weights`` (J,) -> float32 maps (J, h, w) in
        [0, 1] and float32 target weights (J,).

        A third keypoint column (visibility/confidence) is ignored: ``weights`` decides. A
        joint with weight <= 0 or a NaN coordinate gets a zero map and target weight 0; the
        others get a peak of 1 (weights only select joints; confidences are kept apart) and
        their weight as target weight.
        """
        if self.sigma is None:
            raise ValueError("this heatmap codec has no sigma: it can decode, not encode")
        kps = np.asarray(keypoints, dtype=np.float64)
        if kps.ndim != 2 or kps.shape[1] not in (2, 3):
            raise ValueError(f"expected keypoints (J, 2) or (J, 3), got shape {kps.shape}")
        kps = kps[:, :2]
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if kps.shape[0] != w.shape[0]:
            raise ValueError(f"{kps.shape[0]} keypoints but {w.shape[0]} weights")
        h, wd = self.map_size
        ys, xs = cell_centres(h, self.stride), cell_centres(wd, self.stride)
        finite = np.isfinite(kps).all(axis=1)
        with np.errstate(invalid="ignore"):
            present = finite & (w > 0)          # NaN weights compare False: absent
        dx2 = (xs[None, :] - np.where(present, kps[:, 0], 0.0)[:, None]) ** 2     # (J, W)
        dy2 = (ys[None, :] - np.where(present, kps[:, 1], 0.0)[:, None]) ** 2     # (J, H)
        exponent = (dy2[:, :, None] + dx2[:, None, :]) / (2.0 * self.sigma * self.sigma)    # (J, H, W)
        maps = np.where(exponent > CUTOFF_EXPONENT, 0.0, np.exp(-exponent))
        maps[~present] = 0.0
        return maps.astype(np.float32), np.where(present & np.isfinite(w), w, 0.0).astype(np.float32)

    # ------------------------------------------------------------------ decoding
    def decode(self, maps: np.ndarray, within: Optional[Tuple[int, int, int, int]] = None
               ) -> Tuple[np.ndarray, np.ndarray]:
        """Joint maps (J, h, w) -> keypoints (J, 2) in input pixels and peak values (J,), float32.

        ``within`` ``(row0, row1, col0, col1)``: search only those cells (e.g. those an image
        covers, not the padding around it); the sub-cell step then treats that window's edges
        as the map's border.
        """
        if np.ndim(maps) != 3:
            raise ValueError(f"expected maps (J, H, W), got shape {np.shape(maps)}")
        if tuple(np.shape(maps)[1:]) != self.map_size:
            raise ValueError(f"maps of {np.shape(maps)[1]}x{np.shape(maps)[2]} cells, but this codec's are "
                             f"{self.map_size[0]}x{self.map_size[1]} (input {self.input_size[0]}x"
                             f"{self.input_size[1]}, stride {self.stride})")
        maps = np.asarray(maps, dtype=np.float64)
        r0, c0 = 0, 0
        if within is not None:
            r0, r1, c0, c1 = (int(v) for v in within)
            if not (0 <= r0 < r1 <= maps.shape[1] and 0 <= c0 < c1 <= maps.shape[2]):
                raise ValueError(f"window {within} is not inside the {maps.shape[1]}x{maps.shape[2]} map")
            maps = maps[:, r0:r1, c0:c1]
        j, h, w = maps.shape
        flat = maps.reshape(j, -1)
        idx = flat.argmax(axis=1)
        rows, cols = np.divmod(idx, w)
        k = np.arange(j)
        scores = flat[k, idx]
        step_x = 0.25 * np.sign(maps[k, rows, np.minimum(cols + 1, w - 1)] - maps[k, rows, np.maximum(cols - 1, 0)])
        step_y = 0.25 * np.sign(maps[k, np.minimum(rows + 1, h - 1), cols] - maps[k, np.maximum(rows - 1, 0), cols])
        dx = np.where((cols > 0) & (cols < w - 1), step_x, 0.0)
        dy = np.where((rows > 0) & (rows < h - 1), step_y, 0.0)
        shift = self.stride / 2.0 - 0.5
        xs = (cols + c0 + dx) * self.stride + shift
        ys = (rows + r0 + dy) * self.stride + shift
        return np.stack([xs, ys], axis=1).astype(np.float32), scores.astype(np.float32)

    def decode_batch(self, maps: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``[N, J, h, w]`` maps -> keypoints ``(N, J, 2)`` in input pixels and peak values ``(N, J)``."""
        if np.ndim(maps) != 4:
            raise ValueError(f"expected heatmaps [N, J, h, w], got shape {np.shape(maps)}")
        n, j = np.shape(maps)[:2]
        xy, scores = self.decode(np.reshape(maps, (n * j,) + tuple(np.shape(maps)[2:])))
        return xy.reshape(n, j, 2), scores.reshape(n, j)


def background_map(maps: np.ndarray) -> np.ndarray:
    """GCCPM's 17th target map: ``1 - max over joints`` (J, H, W) -> (H, W).

    1 where no joint is near, 0 on a joint's peak; as in GCCPM's ``_generate_keypoint_maps``
    it is computed after the joint maps, so missing joints (zero maps) do not affect it.
    """
    return (1.0 - np.asarray(maps).max(axis=0)).astype(np.float32)

