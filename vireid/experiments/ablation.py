"""The paper's Table IV on one data set: the four component rows trained with the same
seed and budget, each evaluated with the test protocol, in one table.

Rows (``configs/ablation_*.yaml``): Baseline (no Pose Estimation branch), + PEB (its mask
and PCB heads, no pose supervision), + PEB + L_pose (supervised by the cached heatmaps),
+ PEB + L_pose + HFC (the full model). Each row file's own keys (not what it inherits)
are applied on top of one base configuration (``configs/demo.yaml`` for the demo budget,
``configs/sysu.yaml`` for the paper's), so only the components differ between rows. An
extra reference row evaluates the full model's network with random weights.

Writes into ``OUT``: one run folder per row (``OUT/<row>/``, resumable), its evaluation
(``OUT/<row>/eval/results.json``), and ``OUT/ablation.json`` (``rows``: a list in table
order) / ``OUT/ablation.md``.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from vireid.configs import find_config
from vireid.engine.config import ConfigError, load_config, resolve_required
from vireid.evaluation.testing import EvalOptions, evaluate_model, untrained_model
from vireid.io import PathLike, atomic_write_text

logger = logging.getLogger(__name__)

#: (row name in the table, run folder name, preset file) in Table IV order.
ROWS: Tuple[Tuple[str, str, str], ...] = (
    ("Baseline", "baseline", "ablation_baseline.yaml"),
    ("+ PEB", "peb", "ablation_peb.yaml"),
    ("+ PEB + L_pose", "peb_pose", "ablation_peb_pose.yaml"),
    ("+ PEB + L_pose + HFC (full)", "full", "ablation_full.yaml"),
)
UNTRAINED_ROW = "full model, untrained (random weights)"
#: The model switches a Table IV row sets (``configs/ablation_*.yaml``), in the table's column order.
COMPONENTS = ("use_pose_branch", "use_pose_loss", "use_hfc")
#: The columns: the paper's Table IV shows Rank-1 and mAP (SYSU-MM01 all-search, RegDB
#: visible-to-thermal); mINP is added.
METRICS = ("R1", "mAP", "mINP")


@dataclass
class AblationResult:
    rows: Dict[str, Dict[str, Any]] = field(default_factory=dict)   # row -> summary (see run_ablation)
    markdown: str = ""
    json_path: Optional[Path] = None
    md_path: Optional[Path] = None


def row_overrides(path: PathLike) -> List[str]:
    """The row file's own settings as ``key=value`` overrides (its ``inherit`` dropped)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: ablation preset not found")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    out: List[str] = []

    def walk(d: Mapping[str, Any], prefix: str) -> None:
        for k, v in d.items():
            if not prefix and k == "inherit":
                continue
            if isinstance(v, Mapping):
                walk(v, f"{prefix}{k}.")
            else:
                out.append(f"{prefix}{k}={json.dumps(v)}")
    walk(doc, "")
    return out


def summary_of(payload: Mapping[str, Any]) -> Dict[str, Any]:
    """A row's summary from an evaluation's ``results.json`` payload: its (first) setting and
    the mean and std over trials of each feature's metrics."""
    setting = next(iter(payload["results"]))
    feats = payload["results"][setting]["features"]
    return {"setting": setting,
            "features": {f: {m: float(v["mean"][m]) for m in METRICS} for f, v in feats.items()},
            "std": {f: {m: float(v["std"][m]) for m in METRICS} for f, v in feats.items()}}


def ablation_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown in the spirit of Table IV: components, then R1 / mAP / mINP of f_ID and f_ALL."""
    setting = next(iter(rows.values()))["setting"] if rows else ""
    head = ["Row", "PEB", "L_pose", "HFC"] + [f"{f} {m}" for f in ("f_ID", "f_ALL") for m in METRICS] + ["train s"]
    lines = [f"{setting}, mean over the protocol's trials (%):", "",
             "| " + " | ".join(head) + " |", "|" + "|".join([":---"] + [":-:"] * 3 + ["---:"] * (len(head) - 4)) + "|"]
    for name, row in rows.items():
        comp = row.get("components", {})
        marks = ["x" if comp.get(k) else "" for k in COMPONENTS]
        vals = [f"{100 * row['features'][f][m]:.2f}" if f in row["features"] else "-"
                for f in ("f_ID", "f_ALL") for m in METRICS]
        secs = row.get("train_seconds")
        lines.append("| " + " | ".join([name] + marks + vals + [f"{secs:.0f}" if secs is not None else "-"]) + " |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Row:
    """One trained-and-evaluated row: its name in the table, its run folder and its overrides."""

    name: str
    slug: str
    overrides: Tuple[str, ...] = ()


#: overrides that initialise the Pose Estimation branch: they apply to the rows that have one
POSE_INIT_KEYS = ("model.pose_init", "model.pose_init_stage")


def overrides_for_row(base_config: PathLike, row: Row, overrides: Sequence[str]) -> List[str]:
    """``overrides`` as they apply to ``row``: a ``model.pose_init`` (or ``pose_init_stage``)
    given for every row is left out of a row without the Pose Estimation branch (Table IV's
    Baseline), which has nothing to initialise, with a note in the log; every other override
    applies as given."""
    pose = [o for o in overrides if o.split("=", 1)[0].strip() in POSE_INIT_KEYS]
    if not pose:
        return list(overrides)
    rest = [o for o in overrides if o not in pose]
    if load_config(base_config, list(row.overrides) + rest).model.use_pose_branch:
        return list(overrides)
    logger.info("%s: no Pose Estimation branch, so %s do(es) not apply to it", row.name, ", ".join(pose))
    return rest


def select_rows(slugs: str, rows: Sequence[Tuple[str, str, str]] = ROWS) -> Tuple[Tuple[str, str, str], ...]:
    """``'baseline,full'`` -> those of ``rows`` (Table IV's order kept), named by slug; an unknown
    slug is a :class:`ValueError` listing the known ones. Lets a budget train the Baseline and
    the full model only (issue 31's table) without editing the row presets."""
    wanted = [s.strip() for s in str(slugs).split(",") if s.strip()]
    known = [slug for _, slug, _ in rows]
    bad = [s for s in wanted if s not in known]
    if not wanted or bad:
        raise ValueError(f"--rows takes row names from {', '.join(known)} (comma-separated), got {slugs!r}")
    return tuple(r for r in rows if r[1] in wanted)


def preset_rows(configs_dir: PathLike, rows: Sequence[Tuple[str, str, str]] = ROWS) -> List[Row]:
    """Table IV's rows as :class:`Row` s: each preset file's own keys as overrides."""
    return [Row(name, slug, tuple(row_overrides(Path(configs_dir) / f))) for name, slug, f in rows]


def run_ablation(base_config: PathLike, cache_dir: PathLike, out_dir: PathLike, overrides: Sequence[str] = (),
                 configs_dir: Optional[PathLike] = None, rows: Sequence[Tuple[str, str, str]] = ROWS,
                 options: Optional[EvalOptions] = None, untrained_reference: bool = True) -> AblationResult:
    """Table IV: :func:`run_rows` on the row presets of ``configs_dir`` (default: the base
    configuration's folder; a preset's name: the packaged presets), then ``OUT/ablation.json`` / ``OUT/ablation.md``."""
    configs = Path(configs_dir) if configs_dir is not None else find_config(base_config).parent
    return run_rows(base_config, cache_dir, out_dir, preset_rows(configs, rows), overrides=overrides,
                    options=options, untrained_reference=untrained_reference, table_name="ablation")


def run_rows(base_config: PathLike, cache_dir: PathLike, out_dir: PathLike, rows: Sequence[Row],
             overrides: Sequence[str] = (), options: Optional[EvalOptions] = None,
             untrained_reference: bool = True, table_name: str = "ablation",
             table: Callable[[Mapping[str, Mapping[str, Any]]], str] = ablation_table) -> AblationResult:
    """Train and evaluate every row of ``rows`` on ``cache_dir`` into ``out_dir``.

    Every row uses ``base_config`` + the row's overrides + ``overrides`` (same seed, epochs,
    steps, batch, lr for all rows unless a row changes them; ``model.pose_init`` only on the
    rows with a Pose Estimation branch: :func:`overrides_for_row`). A row whose run folder already
    holds its last epoch is resumed / reused (``--resume auto``). The checkpoint evaluated is
    ``best.pt`` when the base configuration holds identities out for validation, else
    ``last.pt``. Writes ``OUT/<table_name>.json`` and ``OUT/<table_name>.md`` (``table``
    draws it); the untrained reference row uses the last row with a Pose Estimation branch.

    Raises the trainer's user errors (:data:`vireid.engine.trainer.USER_ERRORS`) and
    :class:`vireid.evaluation.testing.EvalError`, each naming the file or key at fault.
    """
    from vireid.model.checkpoint import build_model_from_checkpoint, load_checkpoint
    from vireid.engine.trainer import train
    from vireid.evaluation.report import write_results_json

    base_config = Path(base_config)
    cache_dir, out = Path(cache_dir), Path(out_dir)
    opt = options or EvalOptions(mode="all", direction="v2t")
    result = AblationResult()
    configs_used = [(row, resolve_required(load_config(base_config, list(row.overrides)
                                                        + overrides_for_row(base_config, row, overrides))))
                    for row in rows]                                # every config checked before any training
    ref_ck: Optional[Path] = None
    for i, (row_def, cfg) in enumerate(configs_used, 1):
        run = out / row_def.slug
        logger.info("row %d/%d: %s -> %s", i, len(configs_used), row_def.name, run)
        t0 = time.perf_counter()
        res = train(cfg, cache_dir, run, resume="auto")
        seconds = time.perf_counter() - t0
        ck_path = res.best if res.best is not None else res.last
        model, ck = build_model_from_checkpoint(ck_path)
        report = evaluate_model(model, ck, cache_dir, opt, checkpoint=ck_path)
        write_results_json(run / "eval" / "results.json", report.payload)
        atomic_write_text(run / "eval" / "results.md", report.markdown)
        row = summary_of(report.payload)
        row.update(components={k: bool(getattr(cfg.model, k)) for k in COMPONENTS},
                   overrides=list(row_def.overrides), checkpoint=str(ck_path), epoch=ck.get("epoch"),
                   train_seconds=round(seconds, 1), run=str(run))
        result.rows[row_def.name] = row
        logger.info("%s: %s mAP %.2f%% (f_ALL)", row_def.name, row["setting"], 100 * row["features"]["f_ALL"]["mAP"])
        if cfg.model.use_pose_branch:
            ref_ck = ck_path
    if untrained_reference and ref_ck is not None:
        ck = load_checkpoint(ref_ck)
        report = evaluate_model(untrained_model(ck), ck, cache_dir, opt, checkpoint=ref_ck, weights="untrained")
        row = summary_of(report.payload)
        row.update(components={k: bool(ck["model_config"].get(k)) for k in COMPONENTS},
                   overrides=[], checkpoint=None, epoch=0, train_seconds=None, run=None)
        result.rows[UNTRAINED_ROW] = row
    result.markdown = table(result.rows)
    result.json_path = write_results_json(out / f"{table_name}.json", {
        "base_config": str(base_config), "overrides": list(overrides), "cache": str(cache_dir),
        "rows": [{"name": name, **row} for name, row in result.rows.items()],
        "seed": configs_used[0][1].seed if configs_used else None,
    })
    result.md_path = out / f"{table_name}.md"
    atomic_write_text(result.md_path, result.markdown)
    return result
