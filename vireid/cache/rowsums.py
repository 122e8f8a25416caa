"""Per-row checksums of a heatmap cache shard: a flipped byte anywhere in a row is found.

Every shard written since these checksums exist holds a dataset ``checksum`` of shape
``(N, 3)`` uint64: for each row the 64-bit XXH3 hash (``xxhash``) of

0. the stored image (raw pixels, or the JPEG bytes),
1. the stored uint8 heatmaps,
2. its metadata: confidence and keypoints (float32), identity (int32), camera (int16),
   modality (uint8) and record (int64), little-endian, then the source path in UTF-8;

and the shard attribute ``row_checksum = "xxh3_64"``. XXH3 was measured against CRC32C,
XXH64, zlib's CRC32 and HDF5's fletcher32 filter on the real row sizes
(``benchmarks/bench_row_checksum.py``): the fastest (~13 GB/s here, ~13 us for a 162 KiB
raw row), and fletcher32 would need chunked datasets, losing the one-``preadv`` read.
Readers check the image and heatmaps of every row they read and the metadata of every
row of a shard when they open it; shards written before (no ``checksum`` dataset) are read
as before, unchecked.
"""
from __future__ import annotations

import struct
from typing import Sequence

import numpy as np
import xxhash

ALGORITHM = "xxh3_64"
DATASET = "checksum"
FIELDS = ("image", "heatmaps", "metadata")
IMAGE, HEATMAPS, METADATA = range(3)

_FIXED = struct.Struct("<ihBq")     # pid int32, camid int16, modality uint8, record int64


def digest(data: np.ndarray) -> int:
    """XXH3-64 of an array's bytes (C order)."""
    return xxhash.xxh3_64_intdigest(np.ascontiguousarray(data))


def metadata_bytes(confidence: np.ndarray, keypoints: np.ndarray, pid: int, camid: int, modality: int,
                   record: int, path: str) -> bytes:
    """The canonical bytes of one row's metadata (what checksum column 2 covers)."""
    return b"".join((np.asarray(confidence, "<f4").tobytes(), np.asarray(keypoints, "<f4").tobytes(),
                     _FIXED.pack(int(pid), int(camid), int(modality), int(record)), path.encode("utf-8")))


def metadata_digests(confidence: np.ndarray, keypoints: np.ndarray, pid: Sequence[int], camid: Sequence[int],
                     modality: Sequence[int], record: Sequence[int], paths: Sequence[str]) -> np.ndarray:
    """Column 2 for every row of a shard, from its stored arrays: (N,) uint64."""
    return np.fromiter((xxhash.xxh3_64_intdigest(metadata_bytes(confidence[r], keypoints[r], pid[r], camid[r],
                                                                modality[r], record[r], paths[r]))
                        for r in range(len(paths))), dtype=np.uint64, count=len(paths))


def row_digests(images: Sequence[np.ndarray], heatmaps: Sequence[np.ndarray], confidence: np.ndarray,
                keypoints: np.ndarray, pid: Sequence[int], camid: Sequence[int], modality: Sequence[int],
                record: Sequence[int], paths: Sequence[str]) -> np.ndarray:
    """The ``checksum`` dataset of a shard: (N, 3) uint64 (image, heatmaps, metadata)."""
    n = len(paths)
    out = np.zeros((n, 3), np.uint64)
    for r in range(n):
        out[r, IMAGE] = digest(images[r])
        out[r, HEATMAPS] = digest(heatmaps[r])
    if n:
        out[:, METADATA] = metadata_digests(confidence, keypoints, pid, camid, modality, record, paths)
    return out
