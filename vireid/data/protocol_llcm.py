"""Test-set selection of LLCM, as the code that introduced the benchmark does it.

The public DEEN code (``data_manager.process_query_llcm`` / ``process_gallery_llcm``,
which later LLCM papers report with) is reproduced on ``shared/golden/llcm_sampling_*.json``.
Like :mod:`vireid.data.protocol` it works on a plain in-memory description of the test
tree, so it needs no file system: a ``layout`` maps a modality folder (``"test_vis"`` or
``"test_nir"``) to a camera folder (``"cam1"`` ...) to a 4-digit identity folder
(``"0023"``) to the file names in it; the test identities are those of
``idx/test_id.txt`` (one comma-separated line, :func:`parse_llcm_test_ids`).

* query (:func:`llcm_query`): every image of the test identities in one modality
  folder; identities in sorted order, for each identity the cameras in order, files
  sorted.
* gallery, trial ``t`` (:func:`llcm_gallery`): ``random.seed(t)``, then for each
  identity in sorted order and each camera folder in order that has the identity, one
  ``random.choice`` over its sorted files (one image per identity and camera).
* cameras: the reference's fixed lists (:data:`LLCM_CAMERAS`: ``test_vis`` cam1..cam9,
  ``test_nir`` the same without cam3, which records no near-infrared test image); a
  camera folder outside the list is not read, as in the reference. Each camera records
  both modalities, so a camera number means the same place in either folder.
* directions (:func:`llcm_ranking_lists`): IR-to-VIS ranks every ``test_nir`` image
  against trial ``t``'s ``test_vis`` sample. VIS-to-IR takes the ``test_vis`` images
  and trial ``t``'s ``test_nir`` sample, but the reference ranks them with the roles
  swapped: the sampled infrared images are the rows (queries) and every visible image
  is a column (gallery). Papers' LLCM "VIS to IR" numbers are that computation, so it
  is what this module returns. Both directions average the 10 trials.

The metric (the query's own identity *and* camera dropped from its gallery; CMC over
de-duplicated identities) is :func:`vireid.evaluation.llcm_metrics`.
"""
from __future__ import annotations

import random
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from vireid.data.protocol import IdList, Sample, _camera_number, normalise_sysu_ids

__all__ = [
    "LLCM_CAMERAS",
    "LLCM_DIRECTIONS",
    "LLCM_TRIALS",
    "llcm_gallery",
    "llcm_query",
    "llcm_ranking_lists",
    "parse_llcm_test_ids",
]

#: Camera folders of each modality folder, in the reference's order.
LLCM_CAMERAS: Dict[str, Tuple[str, ...]] = {
    "test_vis": tuple(f"cam{i}" for i in range(1, 10)),
    "test_nir": tuple(f"cam{i}" for i in range(1, 10) if i != 3),
}

#: direction -> (folder of the query list, folder of the trial's sampled gallery).
LLCM_DIRECTIONS: Dict[str, Tuple[str, str]] = {
    "ir_to_vis": ("test_nir", "test_vis"),
    "vis_to_ir": ("test_vis", "test_nir"),
}

#: The trials (seeds) the literature averages.
LLCM_TRIALS: Tuple[int, ...] = tuple(range(10))

LlcmLayout = Mapping[str, Mapping[str, Mapping[str, Sequence[str]]]]


def parse_llcm_test_ids(text: str) -> List[int]:
    """The identities of ``idx/test_id.txt``: its first line, comma-separated integers.

    Raises:
        ValueError: an empty file or a field that is not an integer.
    """
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ValueError("idx/test_id.txt is empty: expected one comma-separated line of identities")
    out = []
    for field in lines[0].split(","):
        try:
            out.append(int(field))
        except ValueError:
            raise ValueError(f"idx/test_id.txt: {field!r} is not an integer identity") from None
    return out


def _cameras(
    layout: LlcmLayout, folder: str, cameras: Optional[Sequence[str]]
) -> Tuple[Mapping, Sequence[str]]:
    if folder not in LLCM_CAMERAS:
        raise ValueError(f"folder must be one of {sorted(LLCM_CAMERAS)}, got {folder!r}")
    if folder not in layout:
        raise ValueError(f"layout has no {folder!r} folder (folders: {sorted(layout)})")
    if cameras is None:
        cameras = LLCM_CAMERAS[folder]
    for cam in cameras:
        _camera_number(cam)  # 'camN' or ValueError
    return layout[folder], cameras


def _folders(tree: Mapping, cameras: Sequence[str], pid: str):
    """(camera folder, sorted files) of each camera, in order, that has the identity."""
    for cam in cameras:
        ids = tree.get(cam)
        if ids is not None and pid in ids:
            yield cam, sorted(ids[pid])


def llcm_query(
    layout: LlcmLayout, test_ids: IdList, folder: str, cameras: Optional[Sequence[str]] = None
) -> List[Sample]:
    """Every image of the test identities in ``folder`` (``"test_vis"`` or ``"test_nir"``):
    ids sorted, cameras in order, files sorted; paths relative to the dataset root.

    ``cameras``: the camera folders to read, in order (default :data:`LLCM_CAMERAS`).

    Raises:
        ValueError: an unknown folder, a layout without it, bad identities, or no image.
    """
    tree, cameras = _cameras(layout, folder, cameras)
    samples = []
    for pid in normalise_sysu_ids(test_ids):
        for cam, files in _folders(tree, cameras, pid):
            cam_no = _camera_number(cam)
            samples.extend(Sample(f"{folder}/{cam}/{pid}/{name}", int(pid), cam_no) for name in files)
    if not samples:
        raise ValueError(f"no query image: {folder} cameras {list(cameras)} hold none of test_ids")
    return samples


def llcm_gallery(
    layout: LlcmLayout,
    test_ids: IdList,
    folder: str,
    trial: int,
    cameras: Optional[Sequence[str]] = None,
) -> List[Sample]:
    """Trial ``trial``'s gallery sample of ``folder``: ``random.seed(trial)``, then one
    ``random.choice`` over the sorted files of each identity (sorted) and camera (in
    order) that has it. The global random state is left untouched.

    Raises:
        ValueError: an unknown folder, a negative or non-integer trial, an empty identity
            folder, bad identities, or an empty gallery.
    """
    tree, cameras = _cameras(layout, folder, cameras)
    if isinstance(trial, bool) or int(trial) != trial or trial < 0:
        raise ValueError(f"trial must be a non-negative integer, got {trial!r}")
    rng = random.Random(int(trial))  # the stream of random.seed(trial)
    samples = []
    for pid in normalise_sysu_ids(test_ids):
        for cam, files in _folders(tree, cameras, pid):
            if not files:
                raise ValueError(f"layout[{folder!r}][{cam!r}][{pid!r}] is an empty identity folder")
            samples.append(Sample(f"{folder}/{cam}/{pid}/{rng.choice(files)}", int(pid), _camera_number(cam)))
    if not samples:
        raise ValueError(f"no gallery image: {folder} cameras {list(cameras)} hold none of test_ids")
    return samples


def llcm_ranking_lists(
    layout: LlcmLayout, test_ids: IdList, direction: str, trial: int
) -> Tuple[List[Sample], List[Sample]]:
    """``(rows, columns)`` of one trial as the reference ranks them: distances
    rows x columns go to :func:`vireid.evaluation.llcm_metrics` with the rows as queries.

    ``"ir_to_vis"``: rows every ``test_nir`` image, columns trial ``trial``'s ``test_vis``
    sample. ``"vis_to_ir"``: rows trial ``trial``'s ``test_nir`` sample, columns every
    ``test_vis`` image (the reference's swap of roles; see the module docstring).
    """
    if direction not in LLCM_DIRECTIONS:
        raise ValueError(f"direction must be one of {sorted(LLCM_DIRECTIONS)}, got {direction!r}")
    query_folder, gallery_folder = LLCM_DIRECTIONS[direction]
    query = llcm_query(layout, test_ids, query_folder)
    gallery = llcm_gallery(layout, test_ids, gallery_folder, trial)
    return (query, gallery) if direction == "ir_to_vis" else (gallery, query)
