"""What several readers parse alike: one-line id lists, ``path label`` lists, camera folders."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

from vireid.data.scan_checks import Collector, list_dir
from vireid.data.spec import DatasetSpec


def read_id_list(path: Path, col: Collector) -> List[int]:
    """``exp/*_id.txt`` (SYSU-MM01), ``idx/test_id.txt`` (LLCM): integers, comma-separated, on one line."""
    if not path.is_file():
        col.hard("missing-file", path, "id list not found")
        return []
    ids: List[int] = []
    lines = [ln for ln in path.read_text().splitlines()]
    content = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip()]
    if len(content) > 1:
        col.hard("malformed-list", path, f"expected ids on one line, found {len(content)} non-empty lines",
                 content[1][0])
    for lineno, line in content[:1]:
        for token in line.split(","):
            token = token.strip()
            if not token:
                continue
            if not token.isdigit():
                col.hard("malformed-list", path, f"{token!r} is not an integer id", lineno)
                continue
            ids.append(int(token))
    if len(set(ids)) != len(ids):
        col.hard("malformed-list", path, "an id is listed twice")
    return ids


def read_idx_file(path: Path, col: Collector, what: str = "index file") -> List[Tuple[str, int, int]]:
    """Lines ``relative/path label`` (RegDB ``idx/*.txt``, LLCM ``idx/train_*.txt``) ->
    ``(path, label, line number)``; a missing file, a malformed line or an empty file is a
    hard problem naming the file (and line)."""
    if not path.is_file():
        col.hard("missing-file", path, f"{what} not found")
        return []
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            col.hard("malformed-line", path, f"expected '<relative/path> <label>', got {line.strip()!r}", lineno)
            continue
        out.append((parts[0].replace("\\", "/"), int(parts[1]), lineno))
    if not out:
        col.hard("malformed-list", path, f"{what} is empty")
    return out


def camera_images(root: Path, spec: DatasetSpec, col: Collector, missing_camera: Callable[..., None],
                  missing_camera_msg: str, id_dir_msg: str, file_msg: str,
                  report_empty: bool = False) -> Iterator[Tuple[Any, Path, Path]]:
    """``(camera, identity folder, image file)`` of every image under ``root/<camera>/<id>/``
    (cameras in the spec's order, folders and files sorted); entries that do not match the
    spec's ``id_dir_pattern`` / ``file_pattern`` are soft problems."""
    id_re = re.compile(spec.layout["id_dir_pattern"])
    file_re = re.compile(spec.layout["file_pattern"])
    for cam in spec.cameras:
        cam_dir = root / cam.name
        if not cam_dir.is_dir():
            missing_camera("missing-folder", cam_dir, missing_camera_msg.format(camera=cam.name))
            continue
        for id_dir in list_dir(cam_dir):
            if not id_dir.is_dir() or not id_re.match(id_dir.name):
                col.soft("extra-entry", id_dir, id_dir_msg)
                continue
            files = list_dir(id_dir)
            if report_empty and not files:
                col.soft("empty-folder", id_dir, "identity folder without images")
            for f in files:
                if not f.is_file() or not file_re.match(f.name):
                    col.soft("extra-entry", f, file_msg)
                    continue
                yield cam, id_dir, f
