"""The paper's Table II end to end: RegDB's 10 trials, both directions, mean +- std.

RegDB's protocol (Section IV-A) trains one model per trial (``idx/train_*_{t}.txt``) and
tests it on that trial's held-out half, visible-to-thermal and thermal-to-visible; the
table reports the mean over the 10 trials. :func:`run_regdb_trials` either trains every
trial (``config``: one run folder per trial, resumable, a finished trial reused) or takes
one given checkpoint per trial (``checkpoints``: a path pattern with ``{trial}``), then
evaluates each on its own trial and writes:

* ``OUT/trial<t>/eval/results.json`` (``vireid-eval``'s format) per trial; a trial whose
  results were written for the same checkpoint file (sha256) is not evaluated again;
* ``OUT/table2.json``: per setting and feature, the mean and std (ddof=0, as
  :func:`vireid.evaluation.aggregate_trials`) over the trials of R1/R10/R20/mAP/mINP,
  and the per-trial values;
* ``OUT/table2.md``: the table in the layout of Table II (``mean +- std`` in %).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from vireid.evaluation.testing import FEATURE_ROWS, SETTING_NAMES, EvalError, EvalOptions, evaluate_model
from vireid.io import PathLike, atomic_write_text, file_sha256

logger = logging.getLogger(__name__)

#: Table II's columns (RegDB is reported with R1, R10, R20, mAP and mINP).
METRICS = ("R1", "R10", "R20", "mAP", "mINP")
SETTINGS = (SETTING_NAMES["v2t"], SETTING_NAMES["t2v"])
ALL_TRIALS = tuple(range(1, 11))


@dataclass
class RegdbTableResult:
    summary: Dict[str, Dict[str, Dict[str, Dict[str, float]]]] = field(default_factory=dict)  # setting/feat/mean|std
    per_trial: Dict[int, Dict[str, Any]] = field(default_factory=dict)                        # trial -> results
    checkpoints: Dict[int, str] = field(default_factory=dict)
    markdown: str = ""
    json_path: Optional[Path] = None
    md_path: Optional[Path] = None


def summarise(per_trial: Mapping[int, Mapping[str, Any]]) -> Dict[str, Dict[str, Dict[str, Dict[str, float]]]]:
    """``{trial: results.json 'results'}`` -> setting -> feature -> ``{'mean', 'std'}`` -> metric
    (fractions), over the trials (std with ddof=0)."""
    if not per_trial:
        raise ValueError("no trial to summarise")
    out: Dict[str, Dict[str, Dict[str, Dict[str, float]]]] = {}
    first = next(iter(per_trial.values()))
    for setting in first:
        for feat in first[setting]["features"]:
            values = {m: np.array([float(res[setting]["features"][feat]["mean"][m]) for res in per_trial.values()])
                      for m in METRICS}
            out.setdefault(setting, {})[feat] = {"mean": {m: float(v.mean()) for m, v in values.items()},
                                                 "std": {m: float(v.std()) for m, v in values.items()}}
    return out


def table2_markdown(summary: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]],
                    trials: Sequence[int]) -> str:
    """Markdown in the layout of Table II: one row per feature, ``mean +- std`` (%) per column."""
    have = next(iter(summary.values()))
    feats = [f for f in FEATURE_ROWS.values() if f in have] + sorted(set(have) - set(FEATURE_ROWS.values()))
    head = ["Method"] + [f"{s} {m}" for s in SETTINGS if s in summary for m in METRICS]
    lines = [f"RegDB, mean +- std over trials {', '.join(map(str, trials))} (%):", "",
             "| " + " | ".join(head) + " |", "|" + "|".join([":---"] + ["---:"] * (len(head) - 1)) + "|"]
    for feat in feats:
        cells = [feat]
        for s in SETTINGS:
            if s in summary:
                block = summary[s][feat]
                cells += [f"{100 * block['mean'][m]:.2f} +- {100 * block['std'][m]:.2f}" for m in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _reusable(results_path: Path, sha: str) -> Optional[Dict[str, Any]]:
    from vireid.evaluation.report import read_results_json

    if not results_path.is_file():
        return None
    try:
        doc = read_results_json(results_path)
    except (OSError, ValueError):
        return None
    return doc if doc.get("checkpoint", {}).get("sha256") == sha else None


def run_regdb_trials(cache_dir: PathLike, out_dir: PathLike, *, config: Any = None,
                     checkpoints: Optional[str] = None, trials: Sequence[int] = ALL_TRIALS,
                     options: Optional[EvalOptions] = None) -> RegdbTableResult:
    """Train (``config``, a :class:`vireid.engine.config.TrainConfig`) or take
    (``checkpoints``, e.g. ``'runs/regdb{trial}/last.pt'``) one model per trial, evaluate
    each on its trial in both directions, and write Table II (see the module docstring).

    Raises :class:`EvalError` (a missing checkpoint, one trained on another trial or data
    set) and the trainer's user errors, each naming the file or key at fault.
    """
    from vireid.model.checkpoint import build_model_from_checkpoint
    from vireid.evaluation.report import write_results_json

    if (config is None) == (checkpoints is None):
        raise ValueError("give exactly one of config (train every trial) and checkpoints (a pattern with {trial})")
    trials = [int(t) for t in trials]
    bad = [t for t in trials if t not in ALL_TRIALS]
    if bad or not trials or len(set(trials)) != len(trials):
        raise EvalError(f"trials must be distinct RegDB trials 1..10, got {trials}")
    if checkpoints is not None and "{trial}" not in checkpoints:
        raise EvalError(f"--checkpoints {checkpoints!r} has no '{{trial}}' to put the trial number in")
    if config is not None and config.dataset != "regdb":
        raise EvalError(f"the configuration is for {config.dataset}, not regdb")
    cache_dir, out = Path(cache_dir), Path(out_dir)
    base = options or EvalOptions()
    ck_paths: Dict[int, Path] = {}
    if checkpoints is not None:                                   # every file checked before any work
        ck_paths = {t: Path(checkpoints.format(trial=t)) for t in trials}
        missing = [str(p) for p in ck_paths.values() if not p.is_file()]
        if missing:
            raise EvalError(f"checkpoint not found: {', '.join(missing[:3])}"
                            + (f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""))
    result = RegdbTableResult()
    for i, t in enumerate(trials, 1):
        if config is not None:
            from vireid.engine.trainer import train

            logger.info("RegDB trial %d (%d/%d): training into %s", t, i, len(trials), out / f"trial{t}")
            res = train(config, cache_dir, out / f"trial{t}", trial=t, resume="auto")
            ck_paths[t] = res.best if res.best is not None else res.last
        path = ck_paths[t]
        results_path = out / f"trial{t}" / "eval" / "results.json"
        sha = file_sha256(path)
        doc = _reusable(results_path, sha)
        if doc is None:
            model, ck = build_model_from_checkpoint(path)
            if ck.get("dataset") not in (None, "regdb"):
                raise EvalError(f"{path} was trained on {ck.get('dataset')}, not RegDB")
            if ck.get("trial") not in (None, t):
                raise EvalError(f"{path} was trained on RegDB trial {ck.get('trial')}, not trial {t}: each trial is "
                                "tested with the model trained on its own training half")
            opt = EvalOptions(dataset="regdb", trial=t, direction="both", flip=base.flip, device=base.device,
                              batch_size=base.batch_size, progress=base.progress)
            report = evaluate_model(model, ck, cache_dir, opt, checkpoint=path)
            write_results_json(results_path, report.payload)
            doc = report.payload
        else:
            logger.info("RegDB trial %d: results of %s already in %s", t, path, results_path)
        result.per_trial[t] = doc["results"]
        result.checkpoints[t] = str(path)
        v2t = doc["results"][SETTINGS[0]]["features"]["f_ALL"]["mean"]["mAP"]
        logger.info("RegDB trial %d: visible-to-thermal mAP %.2f%% (f_ALL)", t, 100 * v2t)
    result.summary = summarise(result.per_trial)
    result.markdown = table2_markdown(result.summary, trials)
    result.json_path = write_results_json(out / "table2.json", {
        "dataset": "regdb", "trials": trials, "cache": str(cache_dir), "checkpoints": result.checkpoints,
        "summary": result.summary,
        "per_trial": {str(t): {s: {f: b["mean"] for f, b in res[s]["features"].items()} for s in res}
                      for t, res in result.per_trial.items()},
    })
    result.md_path = out / "table2.md"
    atomic_write_text(result.md_path, result.markdown)
    return result
