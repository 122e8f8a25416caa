"""The geometry of a heatmap cache: input size, heatmap stride and the heatmap size they give.

One fact, stated once. A cache is built at one geometry (``vireid-prep heatmaps
--input-size HxW --stride S``, :class:`~vireid.cache.format.CacheConfig`), which its
``cache.json`` records (:meth:`Geometry.to_attrs`); whatever reads the cache takes the
geometry from there (:meth:`Geometry.from_attrs`, ``HeatmapCache.geometry``): the
transforms (:class:`~vireid.inputs.transforms.TransformConfig`), the evaluation transform and
the network's input size. A configuration that names a geometry (``data.input_size``,
``data.stride`` of ``vireid-train``) is compared with the cache's by one check,
:meth:`Geometry.check`, whose one message names ``cache.json``, both geometries and the fix.

The heatmaps are ``input_size / stride`` (72x36 for the paper's 288x144 at stride 4), on
the grid of :mod:`vireid.pose.codec` (cell ``c`` centred on input pixel ``c*s + s/2 - 0.5``),
so both sides must be multiples of the stride: that rule and the map size are the
:class:`~vireid.pose.codec.HeatmapCodec`'s (:meth:`Geometry.codec`), which renders and
decodes the maps.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from vireid.cache.errors import CacheError
from vireid.io import PathLike
from vireid.pose.codec import PAPER_HEATMAP_STRIDE, PAPER_INPUT_SIZE, HeatmapCodec


def _integer(value: Any) -> int:
    """An integer (numpy's too) as ``int``; ``TypeError`` for anything else (floats, booleans)."""
    if isinstance(value, bool):
        raise TypeError(value)
    return operator.index(value)


def _hw(size: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in size)


@dataclass(frozen=True)
class Geometry:
    """``input_size`` (H, W) of the stored crops = the network input, and the heatmap ``stride``
    (defaults: the paper's 288x144, stride 4). Raises ``ValueError`` unless both sides are
    positive multiples of the stride."""

    input_size: Tuple[int, int] = PAPER_INPUT_SIZE
    stride: int = PAPER_HEATMAP_STRIDE

    def __post_init__(self) -> None:
        try:
            size = tuple(_integer(v) for v in self.input_size)
            stride = _integer(self.stride)
        except TypeError:
            raise ValueError(f"input size and stride must be integers, got {self.input_size!r} and "
                             f"{self.stride!r}") from None
        if len(size) != 2:
            raise ValueError(f"input size must be (H, W), got {self.input_size!r}")
        object.__setattr__(self, "input_size", size)
        object.__setattr__(self, "stride", stride)
        self.codec()                    # ValueError unless both sides are positive multiples of the stride

    def codec(self, sigma: Optional[float] = None) -> HeatmapCodec:
        """The heatmap codec of this geometry (``sigma``: the Gaussian's, to encode; None: decode only)."""
        return HeatmapCodec(self.input_size, self.stride, sigma)

    @property
    def heatmap_size(self) -> Tuple[int, int]:
        """(H / stride, W / stride)."""
        return self.codec().map_size

    def to_attrs(self) -> Dict[str, Any]:
        """The ``cache.json`` attributes that record this geometry."""
        return {"input_size": list(self.input_size), "heatmap_size": list(self.heatmap_size), "stride": self.stride}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], source: PathLike) -> "Geometry":
        """The geometry recorded in a cache's attributes (``source``: its ``cache.json``).

        Raises :class:`~vireid.cache.errors.CacheError` naming ``source`` when ``input_size`` or
        ``stride`` is missing or invalid, or ``heatmap_size`` is not ``input_size / stride``."""
        missing = [k for k in ("input_size", "stride", "heatmap_size") if k not in attrs]
        if missing:
            raise CacheError(f"{source}: no {', '.join(missing)}: not a cache of this vireid version, or a damaged "
                             "cache.json; rebuild the cache with `vireid-prep heatmaps`")
        try:
            geometry = cls(tuple(attrs["input_size"]), attrs["stride"])
        except (TypeError, ValueError) as exc:
            raise CacheError(f"{source}: input_size {attrs['input_size']!r} / stride {attrs['stride']!r}: {exc}; "
                             "rebuild the cache with `vireid-prep heatmaps`") from None
        recorded = attrs["heatmap_size"]
        if not isinstance(recorded, (list, tuple)) or tuple(recorded) != geometry.heatmap_size:
            raise CacheError(f"{source}: heatmap_size {recorded!r} is not input_size / stride "
                             f"({_hw(geometry.heatmap_size)}): a damaged cache.json; rebuild the cache")
        return geometry

    def check(self, configured: "Geometry", source: PathLike) -> None:
        """The one check of a configured geometry against this one, the cache's (``source``:
        its ``cache.json``): :class:`~vireid.cache.errors.CacheError` naming ``source``, what
        differs with both values, and the two fixes (configure the cache's geometry, or rebuild
        the cache at the configured one)."""
        if configured == self:
            return
        differs, keys = [], []
        if configured.input_size != self.input_size:
            differs.append(f"input_size {_hw(self.input_size)} differs from the configured data.input_size "
                           f"{_hw(configured.input_size)}")
            keys.append(f"data.input_size=[{', '.join(map(str, self.input_size))}]")
        if configured.stride != self.stride:
            differs.append(f"stride {self.stride} differs from the configured data.stride {configured.stride}")
            keys.append(f"data.stride={self.stride}")
        raise CacheError(
            f"{source}: {' and '.join(differs)} (heatmaps {_hw(self.heatmap_size)} in the cache, "
            f"{_hw(configured.heatmap_size)} configured): set {' '.join(keys)} to train on this cache, or rebuild "
            f"it with `vireid-prep heatmaps --input-size {_hw(configured.input_size)} --stride {configured.stride}`")


#: The paper's geometry (Section IV-A): 288x144 inputs, stride-4 heatmaps of 72x36.
PAPER = Geometry()
