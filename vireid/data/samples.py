"""The record of one test image and the identity lists both test protocols read
(:mod:`vireid.data.protocol`, :mod:`vireid.data.protocol_llcm`)."""
from __future__ import annotations

import re
from typing import Iterable, List, Mapping, NamedTuple, Sequence, Union

__all__ = ["IdList", "Layout", "Sample", "camera_number", "normalise_sysu_ids"]

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


def camera_number(name: str) -> int:
    match = _CAMERA_RE.match(name)
    if match is None:
        raise ValueError(f"camera name {name!r} is not of the form 'camN'")
    return int(match.group(1))
