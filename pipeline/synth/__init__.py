"""Synthetic data sets in exactly the real layouts (``vireid-prep synth``).

:func:`synthesize` writes a small SYSU-MM01, RegDB or LIP look-alike: rendered people
(:mod:`.traits`, :mod:`.skeleton`, :mod:`.render`) on varied backgrounds
(:mod:`.background`), RGB in colour and IR as thermal-like grey, laid out by
:mod:`.sysu`, :mod:`.regdb` or :mod:`.lip` from the dataset specifications. The
16 LIP joints each person was drawn from are written as ground truth
(``vireid_keypoints.json``, see :mod:`.keypoints`; LIP: its CSVs). The root also gets
``vireid_synth.json``: generator, version, layout, seed, sizes, counts and an
``expected`` block (the YAML's keys) that the scanners check the tree against.

The same arguments give byte-identical files: every random draw comes from the seed
(:mod:`.randomness`), JPEG quality is fixed.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Callable, Iterator, Optional, Tuple

from pipeline.synth.output import check_target, publish, staging_dir, write_file
from pipeline.synth.randomness import check_seed
from pipeline.synth.summary import SynthSummary, Written
from pipeline.synth.traits import IR_LEVELS
from vireid.data import registry
from vireid.data.readers import SynthHook
from vireid.data.scan_checks import SYNTH_MARKER

__all__ = ["synthesize", "SynthSummary", "SYNTH_VERSION", "LAYOUTS", "DEFAULT_IMAGES_PER_CAMERA"]

log = logging.getLogger(__name__)

#: Bumped whenever the same seed would give different files.
SYNTH_VERSION = 1

MIN_SIZE = 32


class _ByLayout(Mapping):
    """A read-only view over the registry's synthesizer hooks (``vireid-prep synth --layout``)."""

    def __init__(self, value: Callable[[SynthHook], Any]) -> None:
        self._value = value

    def __getitem__(self, layout: str) -> Any:
        if layout not in registry.synth_layouts():
            raise KeyError(layout)
        return self._value(registry.get(layout).synth)

    def __iter__(self) -> Iterator[str]:
        return iter(registry.synth_layouts())

    def __len__(self) -> int:
        return len(registry.synth_layouts())


#: layout -> writer (each dataset reader's synthesizer hook)
LAYOUTS: Mapping[str, Callable[..., Written]] = _ByLayout(lambda hook: hook.load())
#: layout -> default images per identity and camera
DEFAULT_IMAGES_PER_CAMERA: Mapping[str, int] = _ByLayout(lambda hook: hook.default_images_per_camera)


def _check_args(layout: str, ids: int, images_per_camera: Optional[int],
                image_size: Optional[Tuple[int, int]]) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    if isinstance(ids, bool) or int(ids) != ids or ids < 1:
        raise ValueError(f"ids must be a positive integer, got {ids!r}")
    if images_per_camera is not None and (int(images_per_camera) != images_per_camera or images_per_camera < 1):
        raise ValueError(f"images_per_camera must be a positive integer, got {images_per_camera!r}")
    if image_size is not None:
        if len(image_size) != 2 or min(image_size) < MIN_SIZE:
            raise ValueError(f"image_size must be (height, width), both >= {MIN_SIZE}, got {image_size!r}")


def synthesize(layout: str, out: Path, ids: int, seed: int, images_per_camera: Optional[int] = None,
               image_size: Optional[Tuple[int, int]] = None, progress: bool = False,
               ir_levels: str = "dye") -> SynthSummary:
    """Write a synthetic ``layout`` (a registered dataset with a synthesizer hook:
    'sysu' | 'regdb' | 'llcm' | 'lip') data set to ``out``.

    ``ids`` is the number of identities (LIP: distinct people); ``images_per_camera``
    the images per identity and camera (RegDB: per modality; LIP: per person), by
    default 4 / 10 / 5; ``image_size`` the base ``(height, width)`` (SYSU and LIP vary
    around it; RegDB uses it exactly), by default 128 x 64 (LIP 160 x 112).

    Raises ``ValueError`` for bad arguments (RegDB: odd ``ids``; SYSU: fewer than 4) and
    ``FileExistsError`` if ``out`` is a file or a non-empty folder that is not an
    earlier synthetic data set of the same layout (which is replaced). The set is built
    in a staging folder beside ``out`` and renamed into place when complete.
    """
    out = Path(out)
    seed = check_seed(seed)
    _check_args(layout, ids, images_per_camera, image_size)
    if ir_levels not in IR_LEVELS:
        raise ValueError(f"ir_levels must be one of {', '.join(IR_LEVELS)}, got {ir_levels!r}")
    infrared = registry.get(layout).synth.infrared
    if not infrared and ir_levels != "dye":
        raise ValueError(f"{layout} has no infrared images: ir_levels applies to the layouts "
                         f"{', '.join(n for n in LAYOUTS if registry.get(n).synth.infrared)}")
    extra = {"ir_levels": ir_levels} if infrared else {}
    check_target(out, layout)
    per_cam = int(images_per_camera or DEFAULT_IMAGES_PER_CAMERA[layout])
    size = (int(image_size[0]), int(image_size[1])) if image_size is not None else None
    start = time.perf_counter()
    staging = staging_dir(out)
    try:
        written = LAYOUTS[layout](staging, int(ids), seed, per_cam, size, progress, **extra)
        marker = {
            "generator": "vireid-synth", "version": SYNTH_VERSION, "layout": layout, "seed": seed,
            "ids": int(ids), "images_per_camera": per_cam, "image_size": list(written.image_size),
            "images": written.images, "splits": written.splits, "expected": written.expected, **extra,
        }
        write_file(staging / SYNTH_MARKER, json.dumps(marker, indent=2, sort_keys=True) + "\n")
        publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    summary = SynthSummary(layout=layout, out=out, seed=seed, ids=int(ids), images_per_camera=per_cam,
                           images=dict(written.images), splits=dict(written.splits), seconds=seconds)
    log.info("%s", summary)
    return summary
