"""Output folder handling: refuse foreign folders, build in a staging folder, publish.

A data set is written into a hidden staging folder beside ``out``
(``.<name>.synth-tmp-*``), the marker ``vireid_synth.json`` last; only then is it
renamed to ``out`` (an earlier synthetic set of the same layout is moved aside and
deleted). An interrupted run therefore never leaves a partial ``out``; at most a
staging folder, which a later run ignores.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from vireid.data.scan_checks import SYNTH_MARKER

log = logging.getLogger(__name__)

JPEG_QUALITY = 92


def check_target(out: Path, layout: str) -> None:
    """Raise ``FileExistsError`` unless ``out`` is absent, empty, or a synthetic ``layout`` set."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder; choose another --out")
    if not any(out.iterdir()):
        return
    marker = out / SYNTH_MARKER
    try:
        doc = json.loads(marker.read_text())
    except (OSError, ValueError):
        raise FileExistsError(f"{out} is not empty and is not a synthetic data set (no readable {SYNTH_MARKER}); "
                              f"refusing to write into it: choose an empty or new folder") from None
    if not isinstance(doc, dict) or doc.get("layout") != layout:
        got = doc.get("layout") if isinstance(doc, dict) else None
        raise FileExistsError(f"{out} holds a synthetic {got!r} data set, not {layout!r}; "
                              f"refusing to overwrite it: choose another folder")


def staging_dir(out: Path) -> Path:
    """A fresh hidden folder beside ``out`` to build the data set in."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.synth-tmp-", dir=out.parent))


def publish(staging: Path, out: Path) -> None:
    """Move the finished ``staging`` folder to ``out``, replacing an earlier synthetic set."""
    old = None
    if out.exists():
        if any(out.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.synth-old-", dir=out.parent))
            out.rename(old / "data")
        else:
            out.rmdir()
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
        log.info("replaced the earlier synthetic data set in %s", out)


def encode_image(img: np.ndarray, ext: str) -> bytes:
    """Encode a uint8 BGR image as ``.jpg`` (fixed quality) or ``.bmp``; deterministic bytes."""
    if ext == ".jpg":
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    elif ext == ".bmp":
        ok, buf = cv2.imencode(".bmp", img)
    else:
        raise ValueError(f"unsupported image extension {ext!r}")
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {ext} image")
    return buf.tobytes()


def write_file(path: Path, data: "bytes | str") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
