"""``vireid-eval``: the test protocol of a trained checkpoint's dataset (SYSU-MM01, RegDB,
LLCM: each registered dataset's, :mod:`vireid.data.registry`).

Reads the checkpoint and the heatmap cache (its crops at the training input size and
its manifest); writes ``results.json``, ``results.md`` (the layout of the paper's Tables I
and II), ``cmc.png`` and ``ranking.png`` into ``--out``.

``--untrained`` evaluates the checkpoint's network with random weights instead (seeded
with the run's seed, nothing loaded: the untrained reference). ``--compare RESULTS``
divides this evaluation's mAP by that of an earlier ``results.json`` (e.g. the untrained
one), prints the ratios and records them in ``results.json`` under ``compare``.
``--rerank`` (``--k1``, ``--k2``, ``--lambda``) adds k-reciprocal re-ranked results beside
the plain ones: ``results[setting]["reranked"]`` next to ``["features"]`` and the rows
``f_ID re-ranked`` / ``f_ALL re-ranked`` in ``results.md`` (:mod:`vireid.evaluation.rerank`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import click

from vireid._version import __version__
from vireid.cli.datasets import DatasetChoice
from vireid.cli.options import CONTEXT, rerank_config, rerank_options, resolve_device_option

log = logging.getLogger(__name__)


@click.command(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="vireid-eval")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A vireid-train checkpoint (RUN/last.pt or RUN/best.pt).")
@click.option("--cache", "cache_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The heatmap cache of the dataset (vireid-prep heatmaps): test crops and manifest.")
@click.option("--dataset", type=DatasetChoice("reid"), default=None,
              help="Protocol (default: the checkpoint's dataset).")
@click.option("--mode", type=click.Choice(["all", "indoor", "both"]), default="both", show_default=True,
              help="SYSU-MM01 search mode: gallery cameras 1,2,4,5 (all) or 1,2 (indoor).")
@click.option("--shot", type=click.Choice(["single", "multi"]), default="single", show_default=True,
              help="SYSU-MM01 gallery: one image per identity and camera, or ten.")
@click.option("--trials", default=None, type=click.IntRange(1, None),
              help="SYSU-MM01, LLCM: number of gallery trials (default 10, seeds 0..9 as the literature).")
@click.option("--trial", default=None, type=click.IntRange(1, 10),
              help="RegDB: the trial the model was trained on (default: the checkpoint's).")
@click.option("--direction", type=click.Choice(["v2t", "t2v", "both"]), default="both", show_default=True,
              help="RegDB: visible query / thermal gallery (v2t) or the reverse; LLCM: VIS-to-IR (v2t) or "
                   "IR-to-VIS (t2v).")
@click.option("--flip", is_flag=True, help="Average the features of each image and its mirror image.")
@rerank_options
@click.option("--untrained", is_flag=True,
              help="Evaluate the checkpoint's network with random weights (seeded with the run's seed, no "
                   "weights loaded): the untrained reference.")
@click.option("--compare", "compare_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="An earlier results.json (e.g. of --untrained) of the same protocol: print and record "
                   "this evaluation's mAP divided by its mAP.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Output folder (default: next to the checkpoint, eval-<dataset>[-untrained]).")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when there is one), cpu, cuda or cuda:N.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, None))
@click.option("--progress/--no-progress", default=True, show_default=True)
def cli(checkpoint: Path, cache_dir: Path, dataset: Optional[str], mode: str, shot: str, trials: Optional[int],
        trial: Optional[int], direction: str, flip: bool, rerank: bool, k1: int, k2: int, lambda_value: float,
        untrained: bool, compare_path: Optional[Path], out: Optional[Path], device: str, batch_size: int,
        progress: bool) -> None:
    """Evaluate a checkpoint with the SYSU-MM01 (10 trials, all/indoor search), RegDB
    (visible-to-thermal, thermal-to-visible) or LLCM (IR-to-VIS, VIS-to-IR, 10 trials) protocol, for the paper's f_ID and f_ALL; with
    --rerank also after k-reciprocal re-ranking (rows "f_ID re-ranked", "f_ALL re-ranked" in
    results.md, "reranked" beside "features" in results.json)."""
    from vireid.evaluation.testing import EvalOptions

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = EvalOptions(dataset=dataset, mode=mode, shot=shot, trials=trials, trial=trial, direction=direction,
                          flip=flip, device=str(resolve_device_option(device)), batch_size=batch_size,
                          progress=progress, rerank=rerank_config(rerank, k1, k2, lambda_value))
    run_evaluation(checkpoint, cache_dir, options, out=out, untrained=untrained, compare_path=compare_path)


def run_evaluation(checkpoint: Path, cache_dir: Path, options: Any, out: Optional[Path] = None,
                   untrained: bool = False, compare_path: Optional[Path] = None) -> Any:
    """``vireid-eval``'s run with typed options (an :class:`~vireid.evaluation.testing.EvalOptions`
    with a resolved device), as ``vireid-train --evaluate`` runs it too:
    :func:`~vireid.evaluation.run.evaluate_checkpoint`, its files
    (:func:`~vireid.evaluation.run.write_evaluation`) and the table on the terminal; a user's
    error is a one-line click error. Returns the :class:`~vireid.evaluation.run.CheckpointEvaluation`."""
    from vireid.data.manifest import ManifestError
    from vireid.cache.reader import CacheError
    from vireid.model.checkpoint import CheckpointError
    from vireid.evaluation.run import evaluate_checkpoint, write_evaluation
    from vireid.evaluation.testing import EvalError
    from vireid.io import WriteError

    try:
        ev = evaluate_checkpoint(checkpoint, cache_dir, options, out=out, untrained=untrained,
                                 compare_path=compare_path)
    except (CheckpointError, CacheError, ManifestError, EvalError, WriteError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        write_evaluation(ev)
    except WriteError as exc:
        raise click.ClickException(str(exc)) from None
    _echo(ev)
    return ev


def _echo(ev: Any) -> None:
    """What the terminal shows of an evaluation (its files are written): notes, the table, the
    pose branch's PCKh, the ratios against --compare and where the files are."""
    from vireid.evaluation.run import evaluation_markdown
    from vireid.evaluation.testing import ratio_table

    report, out, ratios, baseline = ev.report, ev.out, ev.ratios, ev.baseline
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(evaluation_markdown(ev))
    pose = report.payload.get("pose_branch")
    if pose:
        click.echo("Pose Estimation branch, PCKh@0.5 against the cached targets on the test images: " +
                   ", ".join(f"{m} {v['average']:.1f}%" if v["average"] is not None else f"{m} -"
                             for m, v in pose["pckh@0.5"].items()))
    if ratios is not None:
        base = baseline.get("checkpoint", {}).get("weights") or "baseline"
        click.echo(f"mAP against {ev.compare_path} ({base}):\n" + ratio_table(ratios, baseline_name=base))
        known = [(r["ratio"], s, f) for s, by in ratios.items() for f, r in by.items() if r["ratio"] is not None]
        if known:
            low = min(known)
            click.echo(f"lowest mAP ratio: {low[0]:.2f}x ({low[1]}, {low[2]})")
    click.echo(f"results: {out / 'results.json'}, {out / 'results.md'}; pictures: "
               + ", ".join(str(p) for p in ev.pictures))


def main(argv: Optional[list] = None) -> None:
    cli.main(args=argv, prog_name="vireid-eval", standalone_mode=True)


if __name__ == "__main__":
    main()
