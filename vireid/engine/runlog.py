"""The run log ``RUN/log.jsonl``: one JSON object per line, appended and flushed as training goes.

Records (``kind``):

* ``step``: ``epoch``, ``step`` (global, 1-based), ``iter`` (in the epoch), ``lr`` (base lr of
  the main parameter group), ``images_per_s``, and every named loss (``id``, ``hctri``,
  ``pose``, ``kd``, ``total`` as the model has them);
* ``epoch``: ``epoch``, ``step``, the epoch's mean of every loss, ``seconds``;
* ``val``: ``epoch``, ``step``, ``mAP``, ``R1`` (f_all) and ``f_id_mAP``, ``f_id_R1``.

On resume, :func:`trim_log` drops what was logged after the checkpoint (an interrupted
epoch), so the log reads as one uninterrupted run.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping

from vireid.io import PathLike, atomic_write_text


class RunLog:
    """Append-only JSON-lines writer; every record is flushed at once."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, kind: str, **values: Any) -> None:
        record = {"kind": kind, **{k: _finite(v) for k, v in values.items()}}
        self._fh.write(json.dumps(record, allow_nan=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)          # "nan" / "inf": strict JSON has no such numbers
    return value


def read_log(path: PathLike) -> List[Dict[str, Any]]:
    """All records of a run log (a torn last line, from a killed process, is ignored)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def trim_log(path: PathLike, max_step: int) -> int:
    """Rewrite ``path`` atomically without the records after global step ``max_step``; returns how many went."""
    records = read_log(path)
    keep = [r for r in records if int(r.get("step", 0)) <= max_step]
    if len(keep) != len(records):
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in keep))
    return len(records) - len(keep)


def loss_series(records: List[Mapping[str, Any]]) -> Dict[str, List[float]]:
    """``{'step': [...], loss name: [...]}`` of the step records (missing values as NaN)."""
    steps = [r for r in records if r.get("kind") == "step"]
    skip = {"kind", "epoch", "step", "iter", "lr", "images_per_s"}
    names = sorted({k for r in steps for k in r if k not in skip})
    out: Dict[str, List[float]] = {"step": [float(r["step"]) for r in steps],
                                   "lr": [float(r.get("lr", math.nan)) for r in steps]}
    for n in names:
        out[n] = [float(r[n]) if n in r else math.nan for r in steps]
    return out
