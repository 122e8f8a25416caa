"""The dataset registry: the ONE place that lists the datasets (name -> reader).

Adding a dataset is a spec, a reader and a line here (``docs/datasets.md``):

1. ``vireid/data/manifests/<name>.yaml``: layout, cameras, modalities, splits, protocol;
2. ``vireid/data/readers/<name>.py`` with ``READER = <a DatasetReader subclass>()``;
3. ``"<name>": "vireid.data.readers.<name>"`` in :data:`BUILTIN` below.

Every command's ``--dataset`` choices, the evaluation protocols and the synthesizer's
layouts come from here. :func:`register` adds a reader at run time (a plug-in, a test).
"""
from __future__ import annotations

import importlib
from typing import Dict, List, Tuple

from vireid.data.readers import DatasetReader

__all__ = ["BUILTIN", "UnknownDataset", "get", "names", "reid_names", "synth_layouts", "register", "unregister"]

#: name -> module holding ``READER``; imported when first asked for
BUILTIN: Dict[str, str] = {
    "sysu": "vireid.data.readers.sysu",
    "regdb": "vireid.data.readers.regdb",
    "llcm": "vireid.data.readers.llcm",
    "lip": "vireid.data.readers.lip",
}

_added: Dict[str, DatasetReader] = {}
_loaded: Dict[str, DatasetReader] = {}


class UnknownDataset(ValueError):
    """A dataset name the registry does not know."""


def names() -> Tuple[str, ...]:
    """Every registered dataset, built-in first."""
    return tuple(BUILTIN) + tuple(n for n in _added if n not in BUILTIN)


def get(name: str) -> DatasetReader:
    """The reader of ``name``; :class:`UnknownDataset` naming the known ones otherwise."""
    if name in _added:
        return _added[name]
    if name not in BUILTIN:
        raise UnknownDataset(f"unknown dataset {name!r}: choose one of {', '.join(names())}")
    if name not in _loaded:
        reader = importlib.import_module(BUILTIN[name]).READER
        if reader.name != name:
            raise RuntimeError(f"{BUILTIN[name]}.READER is named {reader.name!r}, registered as {name!r}")
        _loaded[name] = reader
    return _loaded[name]


def reid_names() -> Tuple[str, ...]:
    """The ReID benchmarks (vireid-train, vireid-eval)."""
    return tuple(n for n in names() if get(n).reid)


def synth_layouts() -> Tuple[str, ...]:
    """The layouts ``vireid-prep synth`` writes."""
    return tuple(n for n in names() if get(n).synth is not None)


def readers() -> List[DatasetReader]:
    return [get(n) for n in names()]


def register(reader: DatasetReader, replace: bool = False) -> DatasetReader:
    """Add ``reader`` under ``reader.name`` (``replace``: over an existing one)."""
    if not reader.name:
        raise ValueError("a reader needs a name")
    if not replace and (reader.name in BUILTIN or reader.name in _added):
        raise ValueError(f"dataset {reader.name!r} is already registered")
    _added[reader.name] = reader
    return reader


def unregister(name: str) -> None:
    """Remove a reader added with :func:`register`."""
    _added.pop(name, None)
