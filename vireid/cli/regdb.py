"""``vireid-regdb``: the paper's Table II, RegDB's 10 trials in both directions, in one command.

    vireid-regdb --config configs/regdb.yaml --cache CACHE --out OUT [--set KEY=VALUE ...]
    vireid-regdb --checkpoints 'runs/regdb{trial}/last.pt' --cache CACHE --out OUT

See :mod:`vireid.experiments.regdb_trials` for what is written.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import click

from vireid._version import __version__

HELP = """RegDB's protocol end to end (the paper's Table II): one model per trial, each tested on
its own trial visible-to-thermal and thermal-to-visible, mean +- std over the trials.

\b
Train and evaluate every trial (one run folder per trial, OUT/trial<t>; rerunning resumes
an unfinished trial and reuses finished ones, as vireid-train --resume auto):
  vireid-regdb --config configs/regdb.yaml --cache cache/regdb --out runs/regdb \\
      --set model.pose_init=lip_gccpm.pth --device cuda
Evaluate models you trained yourself, one per trial ({trial} is replaced by 1..10):
  vireid-regdb --checkpoints 'runs/regdb{trial}/last.pt' --cache cache/regdb --out runs/regdb

\b
OUT receives trial<t>/eval/results.json (vireid-eval's format, per trial), table2.json (mean,
std and per-trial R1/R10/R20/mAP/mINP for f_ID and f_ALL) and table2.md (Table II's layout).
"""


def _trial_list(text: str) -> List[int]:
    out: List[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi) + 1) if sep else [int(part)])
        except ValueError:
            raise click.BadParameter(f"{text!r}: expected trials like '1-10' or '1,3,5'", param_hint="--trials")
    return out


@click.command(help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="vireid-regdb")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Train every trial with this YAML configuration (a file, or a preset's name, e.g. regdb).")
@click.option("--checkpoints", default=None, metavar="PATTERN",
              help="Evaluate given checkpoints instead: a path with {trial}, e.g. 'runs/regdb{trial}/last.pt'.")
@click.option("--cache", "cache_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The RegDB heatmap cache (vireid-prep heatmaps --dataset regdb).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output folder: trial runs, per-trial results, table2.json and table2.md.")
@click.option("--trials", default="1-10", show_default=True, help="Trials to run, e.g. '1-10' or '1,2,3'.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a training configuration key (repeatable; with --config).")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N (training: default the config's; "
                                             "evaluation: that device, else auto = CUDA when there is one).")
@click.option("--flip", is_flag=True, help="Average each test image's features with its mirror image's.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, None),
              help="Evaluation batch size.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def cli(config_path: Optional[Path], checkpoints: Optional[str], cache_dir: Path, out_dir: Path, trials: str,
        sets: Tuple[str, ...], device: Optional[str], flip: bool, batch_size: int, progress: bool) -> None:
    from vireid.data.manifest import ManifestError
    from vireid.cache.reader import CacheError
    from vireid.model.checkpoint import CheckpointError
    from vireid.engine.config import load_config, with_options
    from vireid.evaluation.testing import EvalError, EvalOptions
    from vireid.engine.loop import resolve_device
    from vireid.experiments.regdb_trials import run_regdb_trials
    from vireid.engine.trainer import USER_ERRORS

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("vireid").setLevel(logging.INFO)
    if (config_path is None) == (checkpoints is None):
        raise click.UsageError("give either --config (train every trial) or --checkpoints PATTERN (evaluate)")
    if sets and config_path is None:
        raise click.UsageError("--set changes the training configuration: it needs --config")
    trial_list = _trial_list(trials)
    from vireid.io import ensure_writable

    try:
        ensure_writable(out_dir)                      # before any trial is trained or evaluated
        config = None
        if config_path is not None:
            # --device and --progress set the configuration's keys: applied to the loaded dataclass
            config = with_options(load_config(config_path, list(sets)), device=device or None, progress=progress)
        eval_device = str(resolve_device(device or (config.device if config is not None else "auto")))
        result = run_regdb_trials(cache_dir, out_dir, config=config, checkpoints=checkpoints, trials=trial_list,
                                  options=EvalOptions(flip=flip, device=eval_device, batch_size=batch_size,
                                                      progress=progress))
    except USER_ERRORS + (EvalError, CheckpointError, CacheError, ManifestError) as exc:
        raise click.ClickException(str(exc).replace("\n", " ")) from None
    click.echo(result.markdown)
    click.echo(f"table: {result.md_path}, {result.json_path}")


def main(argv: Optional[Sequence[str]] = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="vireid-regdb", standalone_mode=True)


if __name__ == "__main__":
    main()
