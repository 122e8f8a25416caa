"""How far each OpenCV resize filter is from PIL's LANCZOS (``Image.ANTIALIAS``), the filter
the AGW / DDAG loaders and the paper's release resize their crops with.

Sources: the real pedestrian crops of ``../shared/images/pedestrians`` (288x144). Cases:

* ``288x144 -> 128x64``: downscaling to the demo's input size (2.25x);
* ``288x144 -> 216x108``: a mild downscale (0.75x), as for SYSU-MM01 crops a little larger
  than the input;
* ``128x64 -> 288x144``: upscaling a RegDB-sized crop (RegDB's images are 128x64) to the
  paper's input; the 128x64 sources are the crops shrunk with PIL LANCZOS;
* ``checkerboard 288x144 -> 128x64``: 1-pixel black / white squares, where a filter without
  anti-aliasing shows what aliasing does (the true local mean is 127.5 everywhere).

For each case and filter: the mean absolute difference from PIL LANCZOS over all pixels and
channels, in 0-255 units, and the time per image. ``vireid``'s crop path
(:func:`vireid.cache.format.resize_crop`) is printed as its own row.

    python benchmarks/bench_resize.py [--images DIR] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np
from PIL import Image

from vireid.cache.format import RESIZE_FILTER, resize_crop

DEFAULT_IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "images" / "pedestrians"

Resize = Callable[[np.ndarray, Tuple[int, int]], np.ndarray]


def pil_lanczos(image: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
    """BGR uint8 -> BGR uint8 resized by Pillow's LANCZOS (RGB order does not matter per channel)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((hw[1], hw[0]), Image.LANCZOS))


def _cv2(flag: int) -> Resize:
    return lambda image, hw: cv2.resize(image, (hw[1], hw[0]), interpolation=flag)


FILTERS: Dict[str, Resize] = {
    "INTER_LINEAR (old)": _cv2(cv2.INTER_LINEAR),
    "INTER_AREA": _cv2(cv2.INTER_AREA),
    "INTER_CUBIC": _cv2(cv2.INTER_CUBIC),
    "INTER_LANCZOS4": _cv2(cv2.INTER_LANCZOS4),
    f"vireid resize_crop ({RESIZE_FILTER})": lambda image, hw: resize_crop(image, hw),
}


def checkerboard(hw: Tuple[int, int]) -> np.ndarray:
    y, x = np.indices(hw)
    return np.repeat((((y + x) % 2) * 255).astype(np.uint8)[:, :, None], 3, axis=2)


def cases(images: List[np.ndarray]) -> Dict[str, Tuple[List[np.ndarray], Tuple[int, int]]]:
    small = [pil_lanczos(im, (128, 64)) for im in images]
    return {
        "288x144 -> 128x64 (demo size)": (images, (128, 64)),
        "288x144 -> 216x108": (images, (216, 108)),
        "128x64 -> 288x144 (paper size)": (small, (288, 144)),
        "checkerboard 288x144 -> 128x64": ([checkerboard((288, 144))], (128, 64)),
    }


def measure(sources: List[np.ndarray], hw: Tuple[int, int], fn: Resize, repeat: int) -> Tuple[float, float]:
    """(mean |fn - PIL LANCZOS| in 0-255 units, best time per image in ms)."""
    diffs = [np.abs(fn(im, hw).astype(np.float64) - pil_lanczos(im, hw).astype(np.float64)).mean() for im in sources]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for im in sources:
            fn(im, hw)
        best = min(best, (time.perf_counter() - t0) / len(sources))
    return float(np.mean(diffs)), best * 1e3


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder of crops (PNG/JPEG)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    paths = sorted(p for p in args.images.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not paths:
        parser.error(f"{args.images}: no PNG or JPEG images")
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
    table = cases(images)
    names = list(table)
    print(f"{len(images)} crops from {args.images}; mean |filter - PIL LANCZOS| (0-255), ms per image\n")
    print("| filter | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for label, fn in FILTERS.items():
        cells = []
        for name in names:
            mad, ms = measure(*table[name], fn, args.repeat)
            cells.append(f"{mad:.2f} ({ms:.2f} ms)")
        print(f"| {label} | " + " | ".join(cells) + " |")
    cells = [f"0 ({measure(*table[n], pil_lanczos, args.repeat)[1]:.2f} ms)" for n in names]
    print("| PIL LANCZOS itself | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
