"""Test-set selection of the VI-ReID literature (SYSU-MM01 and RegDB).

Works on a plain in-memory description of the dataset so that it needs no file
system: a SYSU-MM01 ``layout`` maps a camera folder name (``"cam1"`` ...
``"cam6"``) to a mapping from 4-digit identity folder (``"0023"``) to the file
names in it. The caller lists the folders; this module only selects. The cameras,
trials and multi-shot size are those of the dataset's specification
(``vireid/data/manifests/<dataset>.yaml``, read by :mod:`vireid.data.spec`); a caller
may pass its own.

SYSU-MM01 (as the public Cross-Modal-Re-ID-baseline ``data_manager.py`` does,
reproduced on ``shared/golden/sysu_sampling_*.json``):

* query: every image of the query (IR) cameras of the test identities, for both
  search modes; identities in sorted order, for each identity the cameras in
  order, files sorted;
* gallery, single shot, trial ``t`` (the seed): ``random.seed(t)``, then for each
  identity in sorted order and each gallery (RGB) camera of the search mode in
  order that has the identity, one ``random.choice`` over its sorted files;
* gallery, multi shot (our choice; the reference code has none): same seeding
  and order, ``random.sample(files, min(multi_shot, len(files)))`` over the sorted
  files, kept in the order ``random.sample`` returns them.

RegDB: the test lists of one trial (``idx/test_visible_{trial}.txt`` /
``test_thermal_{trial}.txt``, parsed by the scanner into the manifest) give the query
and gallery of each direction (``"v2t"``: visible query, thermal gallery); each image
gets its camera's number from the specification (visible 1, thermal 2, as the reference
evaluation does).
"""
from __future__ import annotations

import random
import re
from typing import Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from vireid.data.spec import DatasetSpec, EvalProtocol, load_spec

__all__ = [
    "Sample",
    "normalise_sysu_ids",
    "sysu_query",
    "sysu_gallery",
    "regdb_test_lists",
]

Layout = Mapping[str, Mapping[str, Sequence[str]]]
IdList = Iterable[Union[int, str]]


class Sample(NamedTuple):
    """One test image: path relative to the dataset root, identity, camera."""

    path: str
    pid: int
    cam: int


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


def _sysu() -> EvalProtocol:
    """SYSU-MM01's protocol as its specification declares it."""
    protocol = load_spec("sysu").evaluation
    assert protocol is not None  # parse_spec: sysu.yaml has a protocol section
    return protocol


def sysu_query(
    layout: Layout,
    test_ids: IdList,
    mode: str = "all",
    query_cameras: Optional[Sequence[str]] = None,
) -> List[Sample]:
    """Query list of SYSU-MM01: every image of the IR cameras for the test identities.

    ``mode`` ('all' or 'indoor') does not change the query set; it is checked so that
    a typo fails here rather than later. ``query_cameras``: default, the specification's.
    """
    _check_mode(mode, _sysu().gallery_cameras)
    if query_cameras is None:
        query_cameras = _sysu().query_cameras
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
    num_shots: Optional[int] = None,
) -> List[Sample]:
    """Gallery list of SYSU-MM01 for one trial (see the module docstring).

    Args:
        layout: camera -> identity -> file names.
        test_ids: the test identities (ints or 4-digit strings).
        mode: a key of ``gallery_cameras`` ('all' or 'indoor' by default).
        trial: the seed, 0-based (0..9 in the literature).
        shot: 'single' (one image per identity and camera) or 'multi' (up to
            ``num_shots``; default the specification's ``shots.multi``).
        gallery_cameras: mode -> RGB cameras in order (default: the specification's).

    Raises:
        ValueError: unknown mode or shot, a negative trial, an empty identity folder,
            or an empty gallery.
    """
    cameras = _sysu().gallery_cameras if gallery_cameras is None else gallery_cameras
    if num_shots is None:
        num_shots = _sysu().multi_shot
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


def regdb_test_lists(
    table: Mapping[str, Sequence[Sequence[Union[str, int]]]],
    direction: str = "v2t",
    spec: Optional[DatasetSpec] = None,
) -> Tuple[List[Sample], List[Sample]]:
    """(query, gallery) of one RegDB trial.

    Args:
        table: the trial's index lists as the manifest holds them (``splits["trial:N"]``):
            ``"test:<idx_name>"`` -> ``[path, label]`` records, as the scanner parsed them
            from ``idx/test_<idx_name>_N.txt``.
        direction: a key of the specification's ``protocol.directions`` ('v2t': visible
            query, thermal gallery; 't2v': the reverse).
        spec: the RegDB specification (default: ``load_spec("regdb")``).
    """
    spec = spec or load_spec("regdb")
    directions = spec.evaluation.directions if spec.evaluation is not None else {}
    if direction not in directions:
        raise ValueError(f"direction must be one of {sorted(directions)}, got {direction!r}")

    def samples(camera_name: str) -> List[Sample]:
        cam = spec.camera(camera_name)
        key = f"test:{cam.idx_name}"
        if key not in table:
            raise ValueError(f"the trial has no {key} index list (lists: {sorted(table)})")
        return [Sample(str(path), int(label), cam.index) for path, label in table[key]]

    query_camera, gallery_camera = directions[direction]
    return samples(query_camera), samples(gallery_camera)


def __getattr__(name: str):
    """LLCM's selection (``llcm_query``, ``llcm_gallery``...) lives in
    :mod:`vireid.data.protocol_llcm`; re-exported on first use, as that module imports this one."""
    from vireid.data import protocol_llcm

    if name in protocol_llcm.__all__:
        return getattr(protocol_llcm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
