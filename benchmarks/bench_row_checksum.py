"""Which hash guards a cache row: the candidates timed on the real row sizes, same run.

A row of the default (raw) cache at the paper's 288x144 input holds a 124,416-byte
crop, 41,472 bytes of heatmaps (16 x 72 x 36 uint8) and ~300 bytes of metadata; a JPEG
cache row holds a ~15 KiB crop instead. Candidates, each over the same bytes:

* ``xxh3_64`` / ``xxh64`` (``xxhash`` from PyPI), ``crc32c`` (the ``crc32c`` package,
  hardware CRC when the CPU has it), ``zlib.crc32`` (standard library);
* ``fletcher32``: h5py's checksum filter. It needs a chunked dataset and runs inside
  HDF5's filter pipeline, so it is timed as what it would replace: reading a row through
  h5py from a one-row-per-chunk dataset with the filter, against the one ``preadv`` of the
  contiguous raw layout plus a hash.

The last column is the share of the current cache read (crop + heatmaps, one ``preadv``
each, no check) that the check would add. Candidates that are not installed are listed as
such.

    python benchmarks/bench_row_checksum.py [--rows 400] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional

import h5py
import numpy as np

IMAGE = (288, 144, 3)
HEATMAPS = (16, 72, 36)


def candidates() -> Dict[str, Optional[Callable[[memoryview], int]]]:
    out: Dict[str, Optional[Callable[[memoryview], int]]] = {}
    try:
        import xxhash
        out["xxh3_64"] = xxhash.xxh3_64_intdigest
        out["xxh64"] = xxhash.xxh64_intdigest
    except ImportError:
        out["xxh3_64"] = out["xxh64"] = None
    try:
        import crc32c
        out["crc32c"] = crc32c.crc32c
    except ImportError:
        out["crc32c"] = None
    out["zlib.crc32"] = zlib.crc32
    return out


def best_of(fn: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.rows
    images = rng.integers(0, 256, (n, *IMAGE), dtype=np.uint8)
    maps = rng.integers(0, 256, (n, *HEATMAPS), dtype=np.uint8)
    jpeg = [rng.integers(0, 256, 15 * 1024, dtype=np.uint8) for _ in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        raw_path, flt_path = Path(tmp) / "raw.h5", Path(tmp) / "fletcher.h5"
        with h5py.File(raw_path, "w") as f:
            f.create_dataset("image", data=images)
            f.create_dataset("heatmaps", data=maps)
        with h5py.File(flt_path, "w") as f:
            f.create_dataset("image", data=images, chunks=(1, *IMAGE), fletcher32=True)
            f.create_dataset("heatmaps", data=maps, chunks=(1, *HEATMAPS), fletcher32=True)
        with h5py.File(raw_path, "r") as f:
            offs = (f["image"].id.get_offset(), f["heatmaps"].id.get_offset())
        fd = os.open(raw_path, os.O_RDONLY)
        row_bytes = (int(np.prod(IMAGE)), int(np.prod(HEATMAPS)))

        def read_rows() -> List[np.ndarray]:
            rows = []
            for r in range(n):
                a, b = np.empty(IMAGE, np.uint8), np.empty(HEATMAPS, np.uint8)
                os.preadv(fd, [a], offs[0] + r * row_bytes[0])
                os.preadv(fd, [b], offs[1] + r * row_bytes[1])
                rows.append((a, b))
            return rows

        read_rows()
        t_read = best_of(read_rows, args.repeat) / n
        with h5py.File(flt_path, "r") as f:
            di, dh = f["image"], f["heatmaps"]

            def read_fletcher() -> None:
                for r in range(n):
                    di[r]
                    dh[r]

            read_fletcher()
            t_flt = best_of(read_fletcher, args.repeat) / n
        os.close(fd)
    print(f"{n} rows; raw row = {row_bytes[0]:,} B crop + {row_bytes[1]:,} B heatmaps; JPEG row ~15 KiB crop")
    print(f"current raw cache read (2 preadv, no check): {t_read * 1e6:.1f} us/row")
    print(f"{'hash':<12} {'raw row (us)':>13} {'GB/s':>7} {'JPEG crop (us)':>15} {'+ share of a raw read':>22}")
    results = {}
    for name, fn in candidates().items():
        if fn is None:
            print(f"{name:<12} not installed")
            continue
        views = [(memoryview(a.reshape(-1)), memoryview(b.reshape(-1))) for a, b in zip(images, maps)]
        jviews = [memoryview(j) for j in jpeg]

        def raw() -> None:
            for a, b in views:
                fn(a)
                fn(b)

        def jp() -> None:
            for j in jviews:
                fn(j)

        t_raw = best_of(raw, args.repeat) / n
        t_jpeg = best_of(jp, args.repeat) / n
        results[name] = t_raw
        print(f"{name:<12} {t_raw * 1e6:>13.2f} {sum(row_bytes) / t_raw / 1e9:>7.2f} {t_jpeg * 1e6:>15.2f} "
              f"{t_raw / t_read:>21.1%}")
    print(f"{'fletcher32':<12} h5py read of a chunked row with the filter: {t_flt * 1e6:.1f} us/row = "
          f"{t_flt / t_read:.2f}x the raw read (the check and the loss of the one-preadv layout)")
    if results:
        fastest = min(results, key=results.get)
        print(f"fastest: {fastest} ({results[fastest] * 1e6:.2f} us per raw row, "
              f"{results[fastest] / t_read:.1%} of a raw read)")


if __name__ == "__main__":
    main()
