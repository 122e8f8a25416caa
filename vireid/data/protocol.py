"""Test-set selection of the VI-ReID literature (SYSU-MM01 and RegDB).

Works on a plain in-memory description of the dataset so that it needs no file
system: a SYSU-MM01 ``layout`` maps a camera folder name (``"cam1"`` ...
``"cam6"``) to a mapping from 4-digit identity folder (``"0023"``) to the file
names in it. The caller lists the folders; this module only selects.

SYSU-MM01 (as the public Cross-Modal-Re-ID-baseline ``data_manager.py`` does,
reproduced on ``shared/golden/sysu_sampling_*.json``):

* query: every image of the IR cameras (3 and 6) of the test identities, for
  both search modes; identities in sorted order, for each identity the cameras
  in order, files sorted;
* gallery, single shot, trial ``t`` (0-based, trials 0..9): ``random.seed(t)``,
  then for each identity in sorted order and each RGB camera in order
  (all-search: 1, 2, 4, 5; indoor-search: 1, 2) that has the identity, one
  ``random.choice`` over its sorted files;
* gallery, multi shot (our choice; the reference code has none): same seeding
  and order, ``random.sample(files, min(10, len(files)))`` over the sorted files,
  kept in the order ``random.sample`` returns them.

RegDB: the ``idx/test_visible_{trial}.txt`` / ``test_thermal_{trial}.txt`` lists
(lines ``relative/path label``, trials 1..10) give the query and gallery: visible
query / thermal gallery for ``"v2t"`` and the reverse for ``"t2v"``. Visible
images get camera 1 and thermal ones camera 2 (as the reference evaluation does).
"""
from __future__ import annotations

import random
import re
from typing import Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

__all__ = [
    "Sample",
    "SYSU_QUERY_CAMERAS",
    "SYSU_GALLERY_CAMERAS",
    "SYSU_NUM_TRIALS",
    "SYSU_MULTI_SHOT",
    "REGDB_TRIALS",
    "REGDB_VISIBLE_CAMERA",
    "REGDB_THERMAL_CAMERA",
    "normalise_sysu_ids",
    "sysu_trials",
    "sysu_query",
    "sysu_gallery",
    "parse_idx_lines",
    "regdb_test_lists",
]

Layout = Mapping[str, Mapping[str, Sequence[str]]]
IdList = Iterable[Union[int, str]]


class Sample(NamedTuple):
    """One test image: path relative to the dataset root, identity, camera."""

    path: str
    pid: int
    cam: int


#: IR query cameras of SYSU-MM01 (both search modes).
SYSU_QUERY_CAMERAS: Tuple[str, ...] = ("cam3", "cam6")
#: RGB gallery cameras per search mode.
SYSU_GALLERY_CAMERAS: Mapping[str, Tuple[str, ...]] = {
    "all": ("cam1", "cam2", "cam4", "cam5"),
    "indoor": ("cam1", "cam2"),
}
#: Number of gallery trials; trial numbers are 0..SYSU_NUM_TRIALS-1 (random.seed(trial)).
SYSU_NUM_TRIALS = 10
#: Images per identity and camera in the multi-shot gallery.
SYSU_MULTI_SHOT = 10
#: RegDB trial numbers (the idx files are numbered 1..10).
REGDB_TRIALS: Tuple[int, ...] = tuple(range(1, 11))
REGDB_VISIBLE_CAMERA = 1
REGDB_THERMAL_CAMERA = 2

_CAMERA_RE = re.compile(r"^cam(\d+)$")


def normalise_sysu_ids(test_ids: IdList) -> List[str]:
    """Test identities as sorted 4-digit strings (``23`` and ``"0023"`` are the same).

    Raises:
        ValueError: an identity that is not a non-negative integer below 10000, or a
            repeated one.
    """
    out = []
    for raw in test_ids:
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"test_ids: {raw!r} is not an integer identity") from None
        if not 0 <= value <= 9999 or isinstance(raw, bool):
            raise ValueError(f"test_ids: {raw!r} is not a 4-digit identity")
        out.append("%04d" % value)
    if len(set(out)) != len(out):
        raise ValueError("test_ids contains a repeated identity")
    if not out:
        raise ValueError("test_ids is empty")
    return sorted(out)


def _camera_number(name: str) -> int:
    match = _CAMERA_RE.match(name)
    if match is None:
        raise ValueError(f"camera name {name!r} is not of the form 'camN'")
    return int(match.group(1))


def _files(layout: Layout, cam: str, pid: str) -> Optional[List[str]]:
    """Sorted files of one identity folder, or None if the camera lacks the identity."""
    cam_ids = layout.get(cam)
    if cam_ids is None or pid not in cam_ids:
        return None
    return sorted(cam_ids[pid])


def sysu_trials(num_trials: int = SYSU_NUM_TRIALS) -> range:
    """The SYSU-MM01 trial numbers (seeds): ``range(num_trials)``."""
    if int(num_trials) != num_trials or num_trials < 1:
        raise ValueError(f"num_trials must be a positive integer, got {num_trials!r}")
    return range(int(num_trials))


def sysu_query(
    layout: Layout,
    test_ids: IdList,
    mode: str = "all",
    query_cameras: Sequence[str] = SYSU_QUERY_CAMERAS,
) -> List[Sample]:
    """Query list of SYSU-MM01: every image of the IR cameras for the test identities.

    ``mode`` ('all' or 'indoor') does not change the query set; it is checked so that
    a typo fails here rather than later.
    """
    _check_mode(mode, SYSU_GALLERY_CAMERAS)
    ids = normalise_sysu_ids(test_ids)
    samples = []
    for pid in ids:
        for cam in query_cameras:
            files = _files(layout, cam, pid)
            if files is None:
                continue
            cam_no = _camera_number(cam)
            samples.extend(Sample(f"{cam}/{pid}/{name}", int(pid), cam_no) for name in files)
    if not samples:
        raise ValueError(f"no query image: cameras {list(query_cameras)} hold none of test_ids")
    return samples


def _check_mode(mode: str, cameras: Mapping[str, Sequence[str]]) -> None:
    if mode not in cameras:
        raise ValueError(f"mode must be one of {sorted(cameras)}, got {mode!r}")


def sysu_gallery(
    layout: Layout,
    test_ids: IdList,
    mode: str = "all",
    trial: int = 0,
    shot: str = "single",
    gallery_cameras: Optional[Mapping[str, Sequence[str]]] = None,
    num_shots: int = SYSU_MULTI_SHOT,
) -> List[Sample]:
    """Gallery list of SYSU-MM01 for one trial (see the module docstring).

    Args:
        layout: camera -> identity -> file names.
        test_ids: the test identities (ints or 4-digit strings).
        mode: a key of ``gallery_cameras`` ('all' or 'indoor' by default).
        trial: the seed, 0-based (0..9 in the literature).
        shot: 'single' (one image per identity and camera) or 'multi' (up to
            ``num_shots``).
        gallery_cameras: mode -> RGB cameras in order (default
            :data:`SYSU_GALLERY_CAMERAS`; a dataset manifest may pass its own).

    Raises:
        ValueError: unknown mode or shot, a negative trial, an empty identity folder,
            or an empty gallery.
    """
    cameras = SYSU_GALLERY_CAMERAS if gallery_cameras is None else gallery_cameras
    _check_mode(mode, cameras)
    if shot not in ("single", "multi"):
        raise ValueError(f"shot must be 'single' or 'multi', got {shot!r}")
    if isinstance(trial, bool) or int(trial) != trial or trial < 0:
        raise ValueError(f"trial must be a non-negative integer, got {trial!r}")
    if int(num_shots) != num_shots or num_shots < 1:
        raise ValueError(f"num_shots must be a positive integer, got {num_shots!r}")
    ids = normalise_sysu_ids(test_ids)
    rng = random.Random(int(trial))  # same stream as random.seed(trial); global state untouched
    samples = []
    for pid in ids:
        for cam in cameras[mode]:
            files = _files(layout, cam, pid)
            if files is None:
                continue
            if not files:
                raise ValueError(f"layout[{cam!r}][{pid!r}] is an empty identity folder")
            if shot == "single":
                chosen = [rng.choice(files)]
            else:
                chosen = rng.sample(files, min(int(num_shots), len(files)))
            cam_no = _camera_number(cam)
            samples.extend(Sample(f"{cam}/{pid}/{name}", int(pid), cam_no) for name in chosen)
    if not samples:
        raise ValueError(f"no gallery image: cameras {list(cameras[mode])} hold none of test_ids")
    return samples


def parse_idx_lines(lines: Iterable[str], source: str = "<lines>") -> List[Tuple[str, int]]:
    """Parse RegDB idx lines ``relative/path label`` into (path, label) pairs.

    Blank lines are ignored (they hold no record); any other line must have exactly
    two whitespace-separated fields, the second an integer.

    Raises:
        ValueError: naming ``source`` and the 1-based line number of a malformed line.
    """
    records = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(
                f"{source}:{number}: expected 'path label', got {line.rstrip()!r}"
            )
        try:
            label = int(fields[1])
        except ValueError:
            raise ValueError(
                f"{source}:{number}: label {fields[1]!r} is not an integer"
            ) from None
        records.append((fields[0], label))
    if not records:
        raise ValueError(f"{source}: no record")
    return records


def regdb_test_lists(
    idx_lines_visible: Iterable[str],
    idx_lines_thermal: Iterable[str],
    direction: str = "v2t",
    visible_source: str = "<visible>",
    thermal_source: str = "<thermal>",
) -> Tuple[List[Sample], List[Sample]]:
    """(query, gallery) of one RegDB trial from its two idx files' lines.

    ``direction`` 'v2t': visible query, thermal gallery; 't2v': the reverse.
    """
    if direction not in ("v2t", "t2v"):
        raise ValueError(f"direction must be 'v2t' or 't2v', got {direction!r}")
    visible = [
        Sample(path, label, REGDB_VISIBLE_CAMERA)
        for path, label in parse_idx_lines(idx_lines_visible, visible_source)
    ]
    thermal = [
        Sample(path, label, REGDB_THERMAL_CAMERA)
        for path, label in parse_idx_lines(idx_lines_thermal, thermal_source)
    ]
    return (visible, thermal) if direction == "v2t" else (thermal, visible)
