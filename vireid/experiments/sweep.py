"""One loss weight (or any key) swept with everything else fixed: the paper's Fig. 5
("we only change one factor at a time while keeping the rest fixed").

:func:`run_sweep` trains and evaluates one run per value with
:func:`vireid.experiments.ablation.run_rows` (same base configuration, seed and budget), writes
``OUT/sweep.json`` / ``OUT/sweep.md`` (test-protocol R1 / mAP / mINP per value) and, when the
base configuration holds identities out for validation, ``OUT/sweep.png``: validation mAP
against the epoch for each value, the form of Fig. 5. Values are chosen on held-out
training identities only; the test rows are reported, never selected on.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from vireid.experiments.ablation import METRICS, AblationResult, Row, run_rows
from vireid.evaluation.testing import EvalOptions
from vireid.engine.runlog import read_log
from vireid.io import PathLike

logger = logging.getLogger(__name__)


def _slug(key: str, value: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+=-]+", "_", f"{key.split('.')[-1]}={value}")


def sweep_rows(key: str, values: Sequence[str]) -> List[Row]:
    """One :class:`Row` per value of ``key`` (e.g. ``loss.lambda_pose``), named ``key=value``."""
    if not values or len(set(values)) != len(values):
        raise ValueError(f"give distinct values to sweep {key} over, got {list(values)}")
    return [Row(f"{key}={v}", _slug(key, str(v)), (f"{key}={v}",)) for v in values]


def sweep_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown: one line per value, R1 / mAP / mINP of f_ID and f_ALL (%), training seconds."""
    setting = next(iter(rows.values()))["setting"] if rows else ""
    head = ["Run"] + [f"{f} {m}" for f in ("f_ID", "f_ALL") for m in METRICS] + ["train s"]
    lines = [f"{setting}, mean over the protocol's trials (%):", "",
             "| " + " | ".join(head) + " |", "|" + "|".join([":---"] + ["---:"] * (len(head) - 1)) + "|"]
    for name, row in rows.items():
        vals = [f"{100 * row['features'][f][m]:.2f}" if f in row["features"] else "-"
                for f in ("f_ID", "f_ALL") for m in METRICS]
        secs = row.get("train_seconds")
        lines.append("| " + " | ".join([name] + vals + [f"{secs:.0f}" if secs is not None else "-"]) + " |")
    return "\n".join(lines) + "\n"


def run_sweep(base_config: PathLike, cache_dir: PathLike, out_dir: PathLike, key: str, values: Sequence[str],
              overrides: Sequence[str] = (), options: Optional[EvalOptions] = None,
              untrained_reference: bool = False) -> AblationResult:
    """Train and evaluate ``base_config`` once per value of ``key`` into ``OUT/<key=value>/``."""
    from vireid.engine.plots import plot_sweep

    rows = sweep_rows(key, [str(v) for v in values])
    result = run_rows(base_config, cache_dir, out_dir, rows, overrides=overrides, options=options,
                      untrained_reference=untrained_reference, table_name="sweep", table=sweep_table)
    curves: Dict[str, Any] = {}
    for row in rows:
        log = Path(out_dir) / row.slug / "log.jsonl"
        if log.is_file():
            curves[row.name] = read_log(log)
    try:
        plot_sweep(Path(out_dir) / "sweep.png", curves, title=f"{key}: validation mAP on held-out identities")
    except ValueError as exc:
        logger.warning("no sweep.png: %s", exc)
    return result


def parse_values(text: str) -> List[str]:
    """``'0,1,3,5'`` or a JSON list -> the values as override strings."""
    text = text.strip()
    if text.startswith("["):
        return [json.dumps(v) if not isinstance(v, str) else v for v in json.loads(text)]
    return [v.strip() for v in text.split(",") if v.strip()]
