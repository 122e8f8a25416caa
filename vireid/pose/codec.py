"""The heatmap codec: keypoints <-> Gaussian joint heatmaps, in one place (after mmpose's codecs).

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
from typing import Optional, Sequence, Tuple

import numpy as np

#: GCCPM's output stride (its maps are 1/8 of its input)
STRIDE = 8
CUTOFF_EXPONENT = math.log(100.0)


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

    @classmethod
    def for_maps(cls, map_size: Sequence[int], stride: int, sigma: Optional[float] = None) -> "HeatmapCodec":
        """The codec of maps of ``map_size`` ``(h, w)`` cells at ``stride``."""
        return cls((int(map_size[0]) * int(stride), int(map_size[1]) * int(stride)), stride, sigma)

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


def merge_heatmaps(maps: np.ndarray) -> np.ndarray:
    """The paper's single heatmap per image (eq. 16): max over joint maps, (J, H, W) -> (H, W)."""
    return np.asarray(maps).max(axis=0)
