"""Table IV with error bars: every row trained with several seeds, mean +- std per metric.

:func:`run_ablation_seeds` runs :func:`vireid.experiments.ablation.run_ablation` once per seed
(``seed=S`` added to every row's overrides: initialisation, batch order and augmentation
change; data, budget and rows do not) into ``OUT/seed<S>/`` and writes
``OUT/ablation_seeds.json`` / ``.md``: for each row, All-search (or the protocol's setting)
R1 and mAP of f_ID and f_ALL as mean +- sample standard deviation (ddof 1) over the seeds,
and each seed's value. A difference between two rows smaller than their spread is not a
finding; the table says how many standard deviations separate each row from the baseline.
When the base configuration holds identities out for validation, ``OUT/ablation_seeds.png``
draws each row's validation mAP against the epoch: the mean over seeds and a band of +- one
sample sd (:func:`seed_band`).
"""
from __future__ import annotations

import json
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from vireid.engine.loop import flatten_config
from vireid.engine.runlog import read_log
from vireid.experiments.ablation import COMPONENTS, ROWS, run_ablation, summary_of
from vireid.evaluation.testing import EvalOptions
from vireid.io import PathLike, atomic_write_text

logger = logging.getLogger(__name__)

FEATURES = ("f_ID", "f_ALL")
COLUMNS = ("R1", "mAP")


@dataclass
class SeedsResult:
    rows: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    markdown: str = ""
    json_path: Optional[Path] = None
    md_path: Optional[Path] = None
    png_path: Optional[Path] = None


def parse_seeds(text: str) -> List[int]:
    """``'3'`` -> ``[0, 1, 2]``; ``'0,5,7'`` -> ``[0, 5, 7]``."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--seeds takes a count (3) or a list (0,1,2), got {text!r}") from None
    if len(values) == 1 and "," not in str(text):
        if values[0] < 1:
            raise ValueError(f"--seeds needs at least 1 seed, got {values[0]}")
        return list(range(values[0]))
    if len(set(values)) != len(values) or any(v < 0 for v in values):
        raise ValueError(f"--seeds must be distinct non-negative integers, got {text!r}")
    return values


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    vals = [float(v) for v in values]
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def aggregate(per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """``{seed: {row: summary}}`` (``run_ablation``'s rows) -> ``{row: {feature: {metric: {mean, std,
    values}}, components, setting}}`` over the seeds that have the row."""
    names: List[str] = []
    for rows in per_seed.values():
        names += [n for n in rows if n not in names]
    out: Dict[str, Dict[str, Any]] = {}
    for name in names:
        runs = [(s, rows[name]) for s, rows in per_seed.items() if name in rows]
        first = runs[0][1]
        row: Dict[str, Any] = {"setting": first["setting"], "components": first.get("components", {}),
                               "seeds": [s for s, _ in runs], "features": {}}
        for f in FEATURES:
            if f not in first["features"]:
                continue
            row["features"][f] = {}
            for m in COLUMNS:
                vals = [float(r["features"][f][m]) for _, r in runs]
                mu, sd = mean_std(vals)
                row["features"][f][m] = {"mean": mu, "std": sd, "values": vals}
        out[name] = row
    return out


def seeds_table(rows: Mapping[str, Mapping[str, Any]], baseline: str = ROWS[0][0]) -> str:
    """Markdown: mean +- std (%) per row and column, and f_ALL mAP's distance to the baseline
    in units of the two rows' pooled standard deviation.

    When the rows were trained with different seeds (a row added later, with fewer), each row's
    name says its seeds. A row of one seed has no spread: its cells show the value alone, and
    its distance to the baseline is given without a pooled sd, which one seed cannot estimate.
    """
    if not rows:
        return ""
    first = next(iter(rows.values()))
    same_seeds = all(list(r["seeds"]) == list(first["seeds"]) for r in rows.values())
    head = ["Row", "PEB", "L_pose", "HFC"] + [f"{f} {m}" for f in FEATURES for m in COLUMNS] + \
        ["f_ALL mAP - baseline (pooled sd)"]
    if same_seeds:
        n = len(first["seeds"])
        title = (f"{first['setting']}, {n} seed{'s' if n > 1 else ''} ({', '.join(map(str, first['seeds']))}), "
                 "mean +- sample std (%):")
    else:
        title = f"{first['setting']}, mean +- sample std over the seeds each row names (%):"
    lines = [title, "", "| " + " | ".join(head) + " |",
             "|" + "|".join([":---"] + [":-:"] * 3 + ["---:"] * (len(head) - 4)) + "|"]
    base_row = rows.get(baseline, {})
    base = base_row.get("features", {}).get("f_ALL", {}).get("mAP")
    for name, row in rows.items():
        comp = row.get("components", {})
        marks = ["x" if comp.get(k) else "" for k in COMPONENTS]
        one_seed = len(row["seeds"]) == 1
        cells = []
        for f in FEATURES:
            for m in COLUMNS:
                v = row["features"].get(f, {}).get(m)
                cells.append("-" if v is None else f"{100 * v['mean']:.2f}" if one_seed
                             else f"{100 * v['mean']:.2f} +- {100 * v['std']:.2f}")
        this = row["features"].get("f_ALL", {}).get("mAP")
        if base is None or this is None or name == baseline:
            sep = "-"
        else:
            diff = this["mean"] - base["mean"]
            pooled = ((this["std"] ** 2 + base["std"] ** 2) / 2) ** 0.5
            spread = pooled > 0 and not one_seed and len(base_row["seeds"]) > 1
            sep = f"{100 * diff:+.2f}" + (f" ({diff / pooled:+.1f} sd)" if spread else "")
        label = name if same_seeds else f"{name} (seed{'' if one_seed else 's'} {', '.join(map(str, row['seeds']))})"
        lines.append("| " + " | ".join([label] + marks + cells + [sep]) + " |")
    return "\n".join(lines) + "\n"


def seed_band(records_per_seed: Mapping[int, Sequence[Mapping[str, Any]]]
              ) -> Tuple[List[int], List[float], List[float]]:
    """Validation mAP (f_all) over seeds: ``{seed: log records}`` -> ``(epochs, mean, sd)`` at the
    epochs every seed validated at (sample sd, ddof 1; 0 for one seed). Empty when no seed has
    validation records."""
    per_seed = []
    for records in records_per_seed.values():
        per_seed.append({int(r["epoch"]): float(r["mAP"]) for r in records
                         if r.get("kind") == "val" and r.get("mAP") is not None})
    if not per_seed or not all(per_seed):
        return [], [], []
    epochs = sorted(set.intersection(*(set(d) for d in per_seed)))
    stats = [mean_std([d[e] for d in per_seed]) for e in epochs]
    return epochs, [m for m, _ in stats], [sd for _, sd in stats]


def _plot_rows(path: Path, out: Path, rows: Sequence[Tuple[str, str, str]], seeds: Sequence[int]) -> Optional[Path]:
    from vireid.engine.plots import plot_bands

    bands = {}
    for name, slug, _ in rows:
        logs = {s: read_log(out / f"seed{s}" / slug / "log.jsonl") for s in seeds
                if (out / f"seed{s}" / slug / "log.jsonl").is_file()}
        epochs, mean, sd = seed_band(logs)
        if epochs:
            bands[f"{name} ({len(logs)} seeds)"] = (epochs, mean, sd)
    if not bands:
        logger.warning("no %s: the runs hold no validation records (train with data.holdout)", path.name)
        return None
    return plot_bands(path, bands, title="validation mAP on held-out identities, mean +- sd over seeds")


def run_ablation_seeds(base_config: PathLike, cache_dir: PathLike, out_dir: PathLike, seeds: Sequence[int],
                       overrides: Sequence[str] = (), configs_dir: Optional[PathLike] = None,
                       options: Optional[EvalOptions] = None, untrained_reference: bool = True,
                       rows: Sequence[Tuple[str, str, str]] = ROWS) -> SeedsResult:
    """Table IV once per seed into ``OUT/seed<S>/``, then ``OUT/ablation_seeds.json`` / ``.md``.
    Rerunning reuses every finished row (each run folder resumes); ``rows`` picks Table IV's
    rows (:func:`vireid.experiments.ablation.select_rows`), all four by default."""
    if not seeds:
        raise ValueError("give at least one seed")
    out = Path(out_dir)
    per_seed: Dict[int, Dict[str, Dict[str, Any]]] = {}
    for i, seed in enumerate(seeds, 1):
        logger.info("seed %d (%d/%d)", seed, i, len(seeds))
        res = run_ablation(base_config, cache_dir, out / f"seed{seed}", overrides=[*overrides, f"seed={seed}"],
                           configs_dir=configs_dir, options=options, untrained_reference=untrained_reference,
                           rows=rows)
        per_seed[seed] = res.rows
    return write_seeds_table(out, per_seed, rows, {"base_config": str(base_config), "overrides": list(overrides),
                                                   "cache": str(cache_dir)})


def write_seeds_table(out_dir: PathLike, per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]],
                      rows: Sequence[Tuple[str, str, str]] = ROWS,
                      meta: Optional[Mapping[str, Any]] = None) -> SeedsResult:
    """``{seed: {row: summary}}`` -> ``OUT/ablation_seeds.json`` / ``.md`` / ``.png``."""
    from vireid.evaluation.report import write_results_json

    out = Path(out_dir)
    seeds = list(per_seed)
    result = SeedsResult(rows=aggregate(per_seed))
    result.markdown = seeds_table(result.rows)
    result.json_path = write_results_json(out / "ablation_seeds.json", {
        **(meta or {}), "seeds": seeds, "rows": [{"name": n, **r} for n, r in result.rows.items()],
    })
    result.md_path = out / "ablation_seeds.md"
    atomic_write_text(result.md_path, result.markdown)
    result.png_path = _plot_rows(out / "ablation_seeds.png", out, rows, seeds)
    return result


#: What may differ between the runs of one table: the seed, what a row switches, and how a run
#: was shown or placed. ``model.pose_init`` is compared among the rows with a Pose Estimation
#: branch only (the Baseline has none to start).
_MAY_DIFFER = {"seed", "progress", "device", "model.pose_init", *(f"model.{k}" for k in COMPONENTS)}


def finished_runs(out_dir: PathLike, seeds: Sequence[int],
                  rows: Sequence[Tuple[str, str, str]] = ROWS) -> Dict[int, Dict[str, Dict[str, Any]]]:
    """``{seed: {row: summary}}`` of the runs already evaluated in ``OUT/seed<S>/<row>/``
    (their ``eval/results.json``), training nothing: the table of what has been run so far,
    e.g. after a row was added with fewer seeds than the others. A run not evaluated yet is
    left out of its seed, and logged.

    Raises ValueError when no run is evaluated, or when a run's configuration, data (the
    manifest's hash) or test protocol differs from the first one's in more than the seed and
    the row's components (a table of runs of different budgets or data would compare
    nothing), naming both files and the setting.
    """
    out = Path(out_dir)
    per_seed: Dict[int, Dict[str, Dict[str, Any]]] = {}
    refs: Dict[str, Tuple[Path, Dict[str, Any]]] = {}   # "run" (every run), "pose" (rows with a branch)

    def same_as_first(group: str, path: Path, settings: Dict[str, Any]) -> None:
        first, theirs = refs.setdefault(group, (path, settings))
        for key in sorted(set(settings) | set(theirs)):
            if settings.get(key) != theirs.get(key):
                raise ValueError(f"{path}: {key} = {settings.get(key)!r}, but {first} has {theirs.get(key)!r}; "
                                 "one table compares runs of one budget and data")

    for seed in seeds:
        for name, slug, _ in rows:
            path = out / f"seed{seed}" / slug / "eval" / "results.json"
            if not path.is_file():
                logger.info("%s: no evaluated run, left out of the table", path.parent.parent)
                continue
            try:
                payload = json.loads(path.read_text())
                config = payload["config"]
                row = {**summary_of(payload),
                       "components": {k: bool(config["model"][k]) for k in COMPONENTS}}
            except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
                raise ValueError(f"{path}: not an evaluation of a Table IV run ({type(exc).__name__}: {exc})") from None
            flat = {k: v for k, v in flatten_config(config).items() if k not in _MAY_DIFFER}
            flat.update(flatten_config({"manifest_hash": payload.get("manifest_hash"), "protocol": payload.get("protocol")}))
            same_as_first("run", path, flat)
            if row["components"]["use_pose_branch"]:
                same_as_first("pose", path, {"model.pose_init": config["model"].get("pose_init")})
            per_seed.setdefault(seed, {})[name] = row
    if not per_seed:
        raise ValueError(f"{out}: no evaluated run for seeds {', '.join(map(str, seeds))} "
                         f"(looked for seed<S>/<row>/eval/results.json)")
    return per_seed
