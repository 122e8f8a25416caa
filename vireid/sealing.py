"""Checkpoint files that carry their own checksum, so a flipped bit is found before it is used.

``torch.load`` notices a truncated file but loads a checkpoint with a changed byte in a
tensor as if nothing happened. :func:`torch_save` therefore *seals* each file it writes:
after ``torch.save`` it appends to the file's zip archive one more record, named
``<archive>/.vireid-seal``, holding the SHA-256 of every byte before that record.
``torch.load`` ignores the record (the file stays a plain PyTorch checkpoint, loadable by
any tool); :func:`torch_load` checks it first and refuses a damaged file with one line
naming it. Files without a seal (the public GCCPM weights, checkpoints written before)
load as before, with torch's own checks only.

``keep_previous`` (``last.pt``, the estimator's training state) keeps the file being
replaced as ``<stem>.prev<suffix>`` (:func:`vireid.io.previous_path`) once the new one is
fully written, so a resume can fall back to it.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Optional

from vireid.io import PathLike, WriteError, atomic_path, file_sha256

SEAL = ".vireid-seal"


class DamagedFileError(ValueError):
    """A file is truncated, damaged or not what it should be; the message is one line naming it."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(". ")[0].rstrip(".")


def seal(path: PathLike) -> None:
    """Append the seal record to a zip-format PyTorch file."""
    path = Path(path)
    with zipfile.ZipFile(path) as z:
        prefix = z.namelist()[0].split("/")[0]
        start = z.start_dir                          # where the central directory begins: the seal goes there
    doc = {"algorithm": "sha256", "bytes": start, "digest": file_sha256(path, start)}
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(f"{prefix}/{SEAL}", json.dumps(doc, sort_keys=True))


def check_seal(path: PathLike, what: str = "checkpoint") -> Optional[bool]:
    """True: sealed and intact; False: a zip checkpoint without a seal; None: not a zip file
    (a legacy format, or too damaged to tell: torch.load decides). Raises
    :class:`DamagedFileError` when the seal does not match the bytes."""
    path = Path(path)
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None
    with z:
        infos = [i for i in z.infolist() if i.filename.endswith("/" + SEAL)]
        if not infos:
            return False
        info = infos[-1]
        try:
            doc = json.loads(z.read(info))
            start = int(doc["bytes"])
        except Exception as exc:  # noqa: BLE001 - CRC error, bad JSON, ...: the record is damaged
            raise DamagedFileError(f"{path}: damaged {what} (its checksum record is unreadable: "
                                   f"{_first_line(exc)})") from None
    if start != info.header_offset or doc.get("algorithm") != "sha256":
        raise DamagedFileError(f"{path}: damaged {what} (its checksum record does not fit the file)")
    if file_sha256(path, start) != doc.get("digest"):
        raise DamagedFileError(f"{path}: damaged {what}: its bytes differ from the checksum written with it "
                               f"(a changed byte on disk or in a copy)")
    return True


def torch_save(obj: Any, target: PathLike, keep_previous: bool = False) -> None:
    """``torch.save`` atomically, sealed; with ``keep_previous`` the file it replaces stays
    as ``<stem>.prev<suffix>``. A failed write is a :class:`~vireid.io.WriteError` naming
    ``target``, and ``target`` is left as it was."""
    import torch

    with atomic_path(target, suffix=Path(target).suffix, keep_previous=keep_previous) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:          # torch reports a failed write (disk full) this way
            raise WriteError(f"{target}: cannot write: {_first_line(exc)}") from None
        seal(tmp)


def torch_load(path: PathLike, what: str = "checkpoint", **kwargs: Any) -> Any:
    """``torch.load(path, **kwargs)`` after checking the seal; a truncated or damaged file
    raises :class:`DamagedFileError` (one line naming it), never torch's own traceback."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DamagedFileError(f"{path}: {what} not found")
    check_seal(path, what)
    try:
        return torch.load(path, **kwargs)
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes the unpickler raise
        raise DamagedFileError(f"{path}: not a readable {what}: truncated or damaged? ({_first_line(exc)})") from None
