"""Reading the heatmap cache: :class:`HeatmapCache` (format: :mod:`vireid.cache.format`,
whose names this module also exports).

Shards are written by :mod:`vireid.cache.writer`. Readers check every row they read
against its checksums (:class:`HeatmapCache`, ``check_rows``); a damaged row raises
:class:`DamagedRowError` naming the shard, the row and its source image.

Layouts. ``raw``: ``image`` and ``heatmaps`` are contiguous and uncompressed, so a row
is one byte range of the file and :class:`HeatmapCache` reads it with a single
``os.preadv`` into a new array (no HDF5 chunk lookup, no filter, no decode): 162 KiB per
288x144 image, ~5.3 GiB for SYSU-MM01. ``jpeg``: JPEG crops (vlen, 64 per chunk) and
gzip heatmaps (one image per chunk): ~15 KiB per image, each read decodes a JPEG.
Raw shards of earlier versions (chunked, lzf) are read through h5py, with equal content.

Reading is safe with DataLoader workers: :class:`HeatmapCache` opens HDF5 files lazily
in the process that reads them and reopens after a fork.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import h5py
import numpy as np

from vireid.cache import rowsums
from vireid.cache.format import (
    CACHE_FORMAT,
    HEATMAP_SCALE,
    MODALITY_CODES,
    CacheConfig,
    CacheError,
    DamagedRowError,
    cache_attributes,
    compare_attributes,
    decode_image,
    dequantize_heatmaps,
    encode_image,
    quantize_heatmaps,
    shard_name,
)
from vireid.cache.geometry import Geometry
from vireid.io import PathLike
from vireid.pose.codec import HeatmapCodec
from vireid.pose.joints import NUM_JOINTS

__all__ = [
    "CACHE_FORMAT",
    "HEATMAP_SCALE",
    "MODALITY_CODES",
    "CacheConfig",
    "CacheError",
    "DamagedRowError",
    "HeatmapCache",
    "cache_attributes",
    "compare_attributes",
    "decode_image",
    "dequantize_heatmaps",
    "encode_image",
    "quantize_heatmaps",
    "shard_name",
]

_META_KEYS = ("confidence", "keypoints", "pid", "camid", "modality")


@dataclass(frozen=True)
class _Direct:
    """Where the rows of a contiguous, uncompressed uint8 dataset lie in its file."""

    offset: int
    row_shape: Tuple[int, ...]
    row_bytes: int


def _direct_layout(ds: h5py.Dataset) -> Optional[_Direct]:
    """The byte layout of a dataset that can be read with ``pread``, or None (chunked,
    filtered, not uint8, empty or not yet allocated: read through h5py)."""
    if ds.chunks is not None or ds.compression is not None or ds.dtype != np.uint8 or not ds.shape or not ds.shape[0]:
        return None
    offset = ds.id.get_offset()
    if offset is None:
        return None
    row_shape = tuple(int(v) for v in ds.shape[1:])
    return _Direct(offset=int(offset), row_shape=row_shape, row_bytes=int(np.prod(row_shape, dtype=np.int64)))


class HeatmapCache:
    """Random access to a complete cache; safe to use from DataLoader worker processes.

    With ``check_rows`` (the default) every row read is checked against the shard's row
    checksums (:mod:`vireid.cache.rowsums`): the image and heatmaps as they are read, the
    metadata of a shard's rows when the shard is opened. A damaged row raises
    :class:`DamagedRowError` naming the shard, the row and the source image. Shards written
    before the checksums are read unchecked (:attr:`unchecked_shards` counts them).
    """

    def __init__(self, root: PathLike, check_rows: bool = True):
        self.root = Path(root)
        index_path = self.root / "index.json"
        if not (self.root / "cache.json").is_file():
            raise CacheError(f"{self.root}: not a heatmap cache (no cache.json); build it with `vireid-prep heatmaps`")
        if not index_path.is_file():
            raise CacheError(f"{self.root}: cache is incomplete (no index.json): rerun `vireid-prep heatmaps` "
                             f"with the same arguments to finish it")
        try:
            self.attrs: Dict[str, Any] = json.loads((self.root / "cache.json").read_text())
            index = json.loads(index_path.read_text())
            self.shards: List[str] = list(index["shards"])
            self.paths: List[str] = list(index["paths"])
            self.locations: List[Tuple[int, int]] = [tuple(x) for x in index["locations"]]   # (shard, row)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CacheError(f"{self.root}: cache.json or index.json is damaged ({exc}): `vireid-prep heatmaps "
                             f"--repair` rewrites them") from None
        #: the row hash every shard carries (None: a cache written before row checksums, or mixed)
        self.row_checksum: Optional[str] = index.get("row_checksum")
        self.check_rows = check_rows
        self._row_of = {p: i for i, p in enumerate(self.paths)}
        for name in self.shards:
            if not (self.root / name).is_file():
                raise CacheError(f"{self.root / name}: shard listed in index.json is missing")
        self._reset()
        self._pid = os.getpid()
        self.unchecked_shards: set = set()

    def _reset(self) -> None:
        self._files: Dict[int, h5py.File] = {}
        self._meta: Dict[int, Dict[str, np.ndarray]] = {}
        self._large: Dict[int, Tuple[h5py.Dataset, h5py.Dataset]] = {}
        self._direct: Dict[int, Tuple[Optional[_Direct], Optional[_Direct]]] = {}
        self._sums: Dict[int, Optional[np.ndarray]] = {}      # (N, 3) uint64 row checksums
        self._bad_meta: Dict[int, Dict[int, str]] = {}        # rows whose metadata fail their checksum
        self._fds: Dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def geometry(self) -> Geometry:
        """Input size, stride and heatmap size the cache was built at (``CacheError`` naming
        ``cache.json`` when they are missing or inconsistent)."""
        return Geometry.from_attrs(self.attrs, self.root / "cache.json")

    @property
    def codec(self) -> HeatmapCodec:
        """The codec of the cache's maps (its geometry and sigma): decode them with it."""
        return self.geometry.codec(self.attrs["sigma"])

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("_files", "_meta", "_large", "_direct", "_sums", "_bad_meta", "_fds"):
            state[key] = {}
        return state

    def check(self, expected: Mapping[str, Any]) -> None:
        """Raise :class:`CacheError` naming every attribute that differs from ``expected``."""
        diffs = compare_attributes(self.attrs, expected, keys=list(expected))
        if diffs:
            raise CacheError(f"{self.root}: cache does not match the configuration:\n  " + "\n  ".join(diffs))

    def _file(self, shard: int) -> h5py.File:
        if os.getpid() != self._pid:            # forked into a worker: never share handles
            self._close_fds()                   # this process's copies of the parent's descriptors
            self._reset()
            self._pid = os.getpid()
        f = self._files.get(shard)
        if f is None:
            path = self.root / self.shards[shard]
            try:
                f = h5py.File(path, "r")
                # the small per-row arrays are read once per shard: one HDF5 read per
                # item each would cost more than the image and heatmaps together; the two
                # large datasets stay open (a name lookup per access costs ~1.6x per item)
                self._meta[shard] = {k: f[k][()] for k in _META_KEYS}
                self._large[shard] = (f["image"], f["heatmaps"])
                self._open_checksums(shard, f)
                direct = (_direct_layout(f["image"]), _direct_layout(f["heatmaps"]))
                if direct != (None, None):
                    self._fds[shard] = os.open(path, os.O_RDONLY)
                self._direct[shard] = direct
            except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes h5py raise
                raise CacheError(f"{path}: cannot open shard (damaged?): {exc}; `vireid-prep verify {self.root}` "
                                 f"names what it holds, `vireid-prep heatmaps --repair` rebuilds it") from None
            self._files[shard] = f
        return f

    def _open_checksums(self, shard: int, f: h5py.File) -> None:
        """Read a shard's row checksums and check every row's metadata against them."""
        if not self.check_rows or rowsums.DATASET not in f:
            self._sums[shard] = None
            if rowsums.DATASET not in f:
                self.unchecked_shards.add(shard)
            return
        meta = self._meta[shard]
        n = len(meta["pid"])
        sums = f[rowsums.DATASET][()]
        paths = list(f["path"].asstr()[()])
        record = f["record"][()]
        if sums.shape != (n, 3) or len(paths) != n or len(record) != n:
            self._sums[shard] = np.zeros((n, 3), np.uint64)
            self._bad_meta[shard] = {r: "the shard's checksums are damaged" for r in range(n)}
            return
        got = rowsums.metadata_digests(meta["confidence"], meta["keypoints"], meta["pid"], meta["camid"],
                                       meta["modality"], record, paths)
        self._sums[shard] = sums
        self._bad_meta[shard] = {int(r): "checksum mismatch (metadata)"
                                 for r in np.flatnonzero(got != sums[:, rowsums.METADATA])}

    def _damaged(self, shard: int, row: int, what: str) -> DamagedRowError:
        source = next((self.paths[i] for i, loc in enumerate(self.locations) if loc == (shard, row)), "?")
        return DamagedRowError(f"{self.root / self.shards[shard]}: row {row} ({source}) is damaged: {what}; "
                               f"`vireid-prep verify {self.root}` lists every damaged row and `vireid-prep "
                               f"heatmaps --repair` recomputes them")

    def _read_row(self, shard: int, which: int, row: int) -> np.ndarray:
        """Row ``row`` of the image (0) or heatmaps (1) dataset: one ``preadv`` into a new
        array for contiguous uncompressed datasets (raw caches), else through h5py; checked
        against the row's checksum."""
        layout = self._direct[shard][which]
        if layout is None:
            try:
                out = np.asarray(self._large[shard][which][row])
            except Exception as exc:  # noqa: BLE001 - whatever a damaged chunk makes h5py raise
                raise self._damaged(shard, row, f"its {rowsums.FIELDS[which]} cannot be read ({exc})") from None
        else:
            out = np.empty(layout.row_shape, np.uint8)
            got = os.preadv(self._fds[shard], [out], layout.offset + row * layout.row_bytes)
            if got != layout.row_bytes:
                raise CacheError(f"{self.root / self.shards[shard]}: shard is truncated (row {row} of "
                                 f"{'image' if which == 0 else 'heatmaps'} is past the end of the file)")
        sums = self._sums.get(shard)
        if sums is not None and rowsums.digest(out) != int(sums[row, which]):
            raise self._damaged(shard, row, f"checksum mismatch ({rowsums.FIELDS[which]})")
        return out

    def _check_meta(self, shard: int, row: int) -> None:
        what = self._bad_meta.get(shard, {}).get(row)
        if what is not None:
            raise self._damaged(shard, row, what)

    def index_of(self, path: str) -> int:
        try:
            return self._row_of[path]
        except KeyError:
            raise CacheError(f"{self.root}: no entry for {path}") from None

    def metadata(self) -> Dict[str, np.ndarray]:
        """``pid``, ``camid``, ``modality`` (int64, (N,)) and ``confidence`` (float32, (N, 16))
        of every entry in index order, without reading any image: what samplers and
        datasets need up front. Use :meth:`check_metadata` on the entries you will use."""
        out = {k: np.zeros(len(self), np.int64) for k in ("pid", "camid", "modality")}
        out["confidence"] = np.zeros((len(self), NUM_JOINTS), np.float32)
        return self._gather_meta(out)

    def keypoints(self) -> np.ndarray:
        """Every entry's keypoints ``(N, 16, 2)`` float32 in the stored image's pixels (NaN where
        the estimator reported none), in index order, without reading any image or heatmap."""
        out = {"keypoints": np.full((len(self), NUM_JOINTS, 2), np.nan, np.float32)}
        return self._gather_meta(out)["keypoints"]

    def _gather_meta(self, out: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Fill each array of ``out`` (one row per entry, index order) with that metadata field
        of every entry, shard by shard."""
        shard_of = np.asarray([loc[0] for loc in self.locations], dtype=np.int64)
        row_of = np.asarray([loc[1] for loc in self.locations], dtype=np.int64)
        for shard in range(len(self.shards)):
            self._file(shard)
            sel = shard_of == shard
            for k in out:
                out[k][sel] = self._meta[shard][k][row_of[sel]]
        return out

    def check_metadata(self, indices: Sequence[int]) -> None:
        """Raise :class:`DamagedRowError` for the first of ``indices`` whose metadata (identity,
        camera, modality, confidence, keypoints, path) fail their checksum."""
        bad = [int(i) for i in indices if self.locations[int(i)][1] in self._bad_meta_of(self.locations[int(i)][0])]
        if bad:
            shard, row = self.locations[bad[0]]
            more = f" ({len(bad) - 1} more such row(s))" if len(bad) > 1 else ""
            raise self._damaged(shard, row, f"{self._bad_meta[shard][row]}{more}")

    def _bad_meta_of(self, shard: int) -> Dict[int, str]:
        self._file(shard)
        return self._bad_meta.get(shard, {})

    def damaged_rows(self, indices: Sequence[int]) -> List[Tuple[int, str]]:
        """``(index, message)`` of every entry of ``indices`` that fails its checks: reads each
        one (a full pass over them)."""
        out = []
        for i in indices:
            try:
                shard, row = self.locations[int(i)]
                self._file(shard)
                self._check_meta(shard, row)
                self.read_arrays(int(i), quantized=True)
            except DamagedRowError as exc:
                out.append((int(i), str(exc)))
        return out

    def read_arrays(self, i: int, quantized: bool = False) -> Tuple[np.ndarray, np.ndarray]:
        """Entry ``i``'s two large fields only: image (H, W, 3) uint8 BGR, heatmaps (16, Hm, Wm)
        float32, or as stored (uint8, value = round(255 * h)) with ``quantized=True`` (the
        training hot path; the rest comes from :meth:`metadata`)."""
        shard, row = self.locations[i]
        self._file(shard)
        self._check_meta(shard, row)
        image = self._read_row(shard, 0, row)
        heatmaps = self._read_row(shard, 1, row)
        image = decode_image(image, self.attrs["image_format"])
        return image, (heatmaps if quantized else dequantize_heatmaps(heatmaps))

    def get(self, i: int, with_image: bool = True) -> Dict[str, Any]:
        """Entry ``i``: image (H, W, 3) uint8 BGR, heatmaps (16, Hm, Wm) float32, confidence (16,),
        keypoints (16, 2), pid, camid, modality, path."""
        shard, row = self.locations[i]
        self._file(shard)
        self._check_meta(shard, row)
        meta = self._meta[shard]
        out: Dict[str, Any] = {
            "heatmaps": dequantize_heatmaps(self._read_row(shard, 1, row)),
            "confidence": meta["confidence"][row].copy(),
            "keypoints": meta["keypoints"][row].copy(),
            "pid": int(meta["pid"][row]),
            "camid": int(meta["camid"][row]),
            "modality": int(meta["modality"][row]),
            "path": self.paths[i],
        }
        if with_image:
            out["image"] = decode_image(self._read_row(shard, 0, row), self.attrs["image_format"])
        return out

    def _close_fds(self) -> None:
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = {}

    def close(self) -> None:
        self._close_fds()
        for f in self._files.values():
            f.close()
        self._reset()
