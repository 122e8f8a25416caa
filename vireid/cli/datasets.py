"""``--dataset`` / ``--layout`` choices read from the dataset registry when used.

:class:`DatasetChoice` is a :class:`click.Choice` whose choices are
:mod:`vireid.data.registry`'s at the moment they are checked or shown, so a reader
registered after the command was defined (a plug-in, a test) is accepted.
"""
from __future__ import annotations

from typing import Any, Sequence

import click

__all__ = ["DatasetChoice"]


class DatasetChoice(click.Choice):
    """``kind``: ``all`` (every registered dataset: vireid-prep manifest / heatmaps), ``reid``
    (the ReID benchmarks: vireid-train, vireid-eval) or ``synth`` (the layouts vireid-prep
    synth writes)."""

    def __init__(self, kind: str = "all") -> None:
        if kind not in ("all", "reid", "synth"):
            raise ValueError(f"kind must be all, reid or synth, got {kind!r}")
        self.kind = kind
        super().__init__(self._names())

    def _names(self) -> Sequence[str]:
        from vireid.data import registry

        return {"all": registry.names, "reid": registry.reid_names, "synth": registry.synth_layouts}[self.kind]()

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:
        return tuple(self._names())

    @choices.setter
    def choices(self, value: Any) -> None:   # click.Choice.__init__ assigns; the registry is the source
        pass
