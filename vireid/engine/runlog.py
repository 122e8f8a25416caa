"""The run log ``RUN/log.jsonl``: one JSON object per line, appended and flushed as training goes.

Records (``kind``):

* ``step``: ``epoch``, ``step`` (global, 1-based), ``iter`` (in the epoch), ``lr`` (base lr of
  the main parameter group), ``images_per_s``, and every named loss (``id``, ``hctri``,
  ``pose``, ``kd``, ``total`` as the model has them);
* ``epoch``: ``epoch``, ``step``, the epoch's mean of every loss, ``seconds``;
* ``val``: ``epoch``, ``step``, ``mAP``, ``R1`` (f_all) and ``f_id_mAP``, ``f_id_R1``;
* ``grad`` (every ``grad_every`` steps): ``epoch``, ``step``, and per shared block and loss
  term the gradient norm ``<block>/<term>`` and its share ``<block>/<term>_share`` (see
  :mod:`vireid.engine.grad_share`).

On resume, :func:`trim_log` drops what was logged after the checkpoint (an interrupted
epoch), so the log reads as one uninterrupted run.

Optionally (config key ``tensorboard: true``; needs the ``tensorboard`` package, the
``vireid[tensorboard]`` extra) every record also goes to a TensorBoard event file in
``RUN/tensorboard/``: step records as ``train/<name>`` (each loss, ``lr``,
``images_per_s``), epoch means as ``epoch/<name>``, validation as ``val/<name>``, gradient
norms and shares as ``grad/<block>/<term>[_share]``, all at
the global step. A resumed run purges the events after its checkpoint's step, as the
JSON-lines log is trimmed.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from vireid.io import PathLike, atomic_write_text


_TB_PREFIX = {"step": "train", "epoch": "epoch", "val": "val", "grad": "grad"}
_NOT_SCALARS = {"epoch", "step", "iter"}


def tensorboard_writer(log_dir: PathLike, resume_step: int = 0) -> Any:
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``log_dir``; after a resume from global
    step ``resume_step`` > 0, TensorBoard discards the old events after that step."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise RuntimeError(f"config key `tensorboard: true` needs the tensorboard package ({exc}): install it "
                           f"with `pip install 'vireid[tensorboard]'` (or `pip install tensorboard`), "
                           f"or set `tensorboard: false`") from None
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(log_dir), purge_step=resume_step + 1 if resume_step > 0 else None)


class RunLog:
    """Append-only JSON-lines writer; every record is flushed at once.

    ``tensorboard``: a folder for TensorBoard events of the same records (see the module
    docstring), or None; ``resume_step``: the global step the run resumes from.
    """

    def __init__(self, path: PathLike, tensorboard: Optional[PathLike] = None, resume_step: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tb = tensorboard_writer(tensorboard, resume_step) if tensorboard is not None else None
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, kind: str, **values: Any) -> None:
        record = {"kind": kind, **{k: _finite(v) for k, v in values.items()}}
        self._fh.write(json.dumps(record, allow_nan=False) + "\n")
        self._fh.flush()
        if self._tb is not None and "step" in values:
            prefix = _TB_PREFIX.get(kind, kind)
            for name, value in values.items():
                if name not in _NOT_SCALARS and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{prefix}/{name}", float(value), global_step=int(values["step"]))

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NullLog:
    """The run log of processes other than rank 0: they write nothing."""

    def write(self, kind: str, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass


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
