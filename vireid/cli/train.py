"""``vireid-train``: joint pose / ReID training from a heatmap cache.

    vireid-train --config configs/sysu.yaml --cache CACHE --out RUN [--trial N]
                 [--resume auto|PATH] [--set key=value ...] [--device cpu|cuda] [KEY=VALUE ...]
    vireid-train --config configs/sysu.yaml --cache CACHE --profile 20   (where a step's time goes)
    torchrun --nproc-per-node N $(which vireid-train) --config ... (DDP, one process per GPU)

Writes ``RUN/config.yaml``, ``RUN/log.jsonl``, ``RUN/last.pt`` (every epoch), ``RUN/best.pt``
(with a hold-out), ``RUN/losses.png`` and ``RUN/val.png``; see :mod:`vireid.engine.trainer`.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Sequence, Tuple

import click

from vireid._version import __version__

HELP = """Train the joint pose / ReID network on a heatmap cache (vireid-prep heatmaps).

\b
CONFIG is a YAML preset (configs/sysu.yaml, configs/regdb.yaml: the paper's Section IV-A;
configs/*_release.yaml: the public release's recipe; configs/ablation_*.yaml: Table IV;
configs/demo.yaml: a few minutes on a CPU). Any key can be changed with --set KEY=VALUE or a
trailing KEY=VALUE, e.g. `optim.lr=0.02 model.pretrained=/w/resnet50.pth data.workers=8`;
an unknown key or a value of the wrong type is an error naming it.

\b
RUN receives config.yaml (the resolved configuration), log.jsonl (every loss and the lr per
step), last.pt (after every epoch; --resume auto continues from it exactly), best.pt (only
with data.holdout: best validation mAP on held-out training identities), losses.png and
val.png. The test split is never trained on or used to pick a checkpoint; --evaluate single|multi
runs vireid-eval on the selected checkpoint at the end (RUN/eval), or run vireid-eval yourself.

\b
Multi-GPU: torchrun --nproc-per-node N $(which vireid-train) ... (or python -m vireid.cli.train);
the D x K batch of the config is the global batch, split between the processes; only rank 0
writes RUN. Speed switches: --set speed.amp=bf16|bf16-native|fp16|false, speed.channels_last,
speed.pin_memory, speed.compile (auto = on with CUDA, off on a CPU).

\b
--profile N trains N steps (after one warm-up step) in a temporary folder, keeps nothing and
prints where a step's time goes: data wait, to device, forward, backward, optimizer step, the
time of each loss term, images/s and peak memory (--out is not needed).
"""


def _rank() -> int:
    try:
        return int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0


def _setup_logging(rank: int) -> None:
    # under torchrun only rank 0 reports progress; the others speak up for warnings and errors
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s" if rank == 0 else
                        f"%(levelname)s [rank {rank}] %(name)s: %(message)s")
    logging.getLogger("vireid").setLevel(logging.INFO if rank == 0 else logging.WARNING)


@click.command(help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="vireid-train")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="YAML configuration: a file (yours; `inherit: sysu.yaml` extends a preset), or a preset's name "
                   "(sysu, regdb, demo, ...: the packaged configs/, found by name in an installed wheel).")
@click.option("--cache", "cache_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Heatmap cache folder (its cache.json, shards and manifest.json); the estimator is not needed.")
@click.option("--out", "out_dir", default=None, type=click.Path(path_type=Path, file_okay=False),
              help="Run folder for checkpoints, log and plots (required unless --profile).")
@click.option("--trial", type=click.IntRange(1, 10), default=None,
              help="RegDB trial 1-10 (its train tables; default data.trial). Not for SYSU-MM01.")
@click.option("--resume", default=None, metavar="auto|PATH",
              help="Continue a run: 'auto' = RUN/last.pt if present (else start), or a checkpoint path.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a configuration key (repeatable), e.g. --set optim.lr=0.02.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: the config's device, 'auto').")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: the config's).")
@click.option("--evaluate", "evaluate_shot", type=click.Choice(["single", "multi"]), default=None,
              help="After training, run the test protocol (vireid-eval: SYSU-MM01 all + indoor search, 10 "
                   "trials, this shot; RegDB: this trial, both directions) on best.pt (with a hold-out) or "
                   "last.pt, into RUN/eval. Rank 0 only under torchrun.")
@click.option("--profile", "profile_steps", type=click.IntRange(1, None), default=None, metavar="N",
              help="Time N training steps after a warm-up step and print where a step's time goes; writes "
                   "nothing (no --out, --resume or --evaluate).")
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
def cli(config_path: Path, cache_dir: Path, out_dir: Optional[Path], trial: Optional[int], resume: Optional[str],
        sets: Tuple[str, ...], device: Optional[str], progress: Optional[bool], evaluate_shot: Optional[str],
        profile_steps: Optional[int], overrides: Tuple[str, ...]) -> None:
    from vireid.engine.config import load_config, with_options
    from vireid.engine.trainer import USER_ERRORS, train

    if profile_steps is not None:
        if out_dir is not None or resume is not None or evaluate_shot is not None:
            raise click.UsageError("--profile writes nothing: leave out --out, --resume and --evaluate")
    elif out_dir is None:
        raise click.UsageError("Missing option '--out'.")
    rank = _rank()
    _setup_logging(rank)
    try:
        # --device and --progress set the configuration's keys: applied to the loaded dataclass
        config = with_options(load_config(config_path, list(sets) + list(overrides)), device=device,
                              progress=progress)
        if profile_steps is not None:
            _profile(config, cache_dir, profile_steps, trial, rank)
            return
        result = train(config, cache_dir, out_dir, trial=trial, resume=resume)
    except USER_ERRORS as exc:
        raise click.ClickException(str(exc).replace("\n", " ")) from None
    except KeyboardInterrupt:
        if out_dir is None:                                            # --profile
            raise SystemExit(130) from None
        last = out_dir / "last.pt"
        where = f"{last} holds the last finished epoch" if last.is_file() else "no epoch finished"
        click.echo(f"interrupted: {where}; continue with --resume auto", err=True)
        raise SystemExit(130) from None
    if rank != 0:
        return
    click.echo(f"trained {result.epochs_done} epoch(s), {result.global_step} steps")
    click.echo(f"checkpoint: {result.last}" + (f" (best on validation: {result.best})" if result.best else ""))
    plots = [str(p) for p in (result.losses_png, result.val_png) if p is not None]
    click.echo(f"log: {result.run_dir / 'log.jsonl'}; plots: {', '.join(plots) or 'none'}")
    if evaluate_shot is not None:
        _evaluate_after_training(result, config, cache_dir, out_dir, trial, evaluate_shot)


def _profile(config, cache_dir: Path, steps: int, trial: Optional[int], rank: int) -> None:
    from vireid.experiments.profile import profile_training

    report = profile_training(config, cache_dir, steps, warmup=1, trial=trial)
    if rank == 0:
        click.echo(report.format())


def _evaluate_after_training(result, config, cache_dir: Path, out_dir: Path, trial: Optional[int],
                             shot: str) -> None:
    """vireid-eval's evaluation (:func:`vireid.cli.evaluate.run_evaluation`) of the run's selected
    checkpoint into RUN/eval, with the run's device and progress switch (same outputs as vireid-eval)."""
    from vireid.cli.evaluate import run_evaluation
    from vireid.cli.options import resolve_device_option
    from vireid.evaluation.testing import EvalOptions

    checkpoint = result.best or result.last
    from vireid.data import registry

    per_trial = registry.get(config.dataset).trained_per_trial
    options = EvalOptions(shot=shot, device=str(resolve_device_option(config.device)), progress=config.progress,
                          trial=(trial if trial is not None else config.data.trial) if per_trial else None)
    click.echo(f"evaluating {checkpoint} on the test split ({config.dataset}, {shot}-shot) into {out_dir / 'eval'}")
    run_evaluation(checkpoint, cache_dir, options, out=out_dir / "eval")


def main(argv: Optional[Sequence[str]] = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="vireid-train", standalone_mode=True)


if __name__ == "__main__":
    main()
