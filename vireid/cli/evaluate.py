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
from typing import Any, Dict, List, Optional

import click
import numpy as np

from vireid._version import __version__
from vireid.cli.datasets import DatasetChoice
from vireid.cli.options import CONTEXT, rerank_config, rerank_options

log = logging.getLogger(__name__)


def _ranking_png(path: Path, cache, row_of: Dict[str, int], indices: List[int], sets, feats: np.ndarray,
                 num_queries: int = 6, top: int = 10) -> None:
    """Queries (spread over identities) with their top-``top`` gallery images of trial 0."""
    from vireid.evaluation.report import plot_ranking

    gallery = sets.galleries[0]
    q_rows = np.linspace(0, len(sets.query) - 1, num=min(num_queries, len(sets.query))).astype(int)
    qf = feats[[row_of[sets.query[i].path] for i in q_rows]]
    gf = feats[[row_of[s.path] for s in gallery]]
    order = np.argsort(-(qf @ gf.T), axis=1, kind="stable")[:, :min(top, len(gallery))]

    def rgb(p: str) -> np.ndarray:
        return cache.read_arrays(indices[row_of[p]])[0][:, :, ::-1].copy()

    plot_ranking(path, [rgb(sets.query[i].path) for i in q_rows],
                 [[rgb(gallery[j].path) for j in row] for row in order],
                 np.array([[gallery[j].pid == sets.query[i].pid for j in row] for i, row in zip(q_rows, order)]))


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
    from vireid.data.manifest import ManifestError
    from vireid.cache.reader import CacheError
    from vireid.engine.checkpoint import CheckpointError, build_model_from_checkpoint, load_checkpoint
    from vireid.evaluation.testing import EvalError, EvalOptions, evaluate_model, map_ratios, untrained_model
    from vireid.engine.loop import DeviceError, resolve_device
    from vireid.evaluation.report import read_results_json
    from vireid.io import WriteError, ensure_writable

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        device = str(resolve_device(device))
    except DeviceError as exc:
        raise click.ClickException(f"--device: {exc}") from None
    options = EvalOptions(dataset=dataset, mode=mode, shot=shot, trials=trials, trial=trial, direction=direction,
                          flip=flip, device=device, batch_size=batch_size, progress=progress,
                          rerank=rerank_config(rerank, k1, k2, lambda_value))
    baseline = None
    try:
        if compare_path is not None:
            if not compare_path.is_file():
                raise EvalError(f"{compare_path}: results file not found (--compare)")
            try:
                baseline = read_results_json(compare_path)
            except (OSError, ValueError) as exc:
                raise EvalError(f"{compare_path}: not a readable results.json ({exc})") from None
        if untrained:
            ck = load_checkpoint(checkpoint)
            model = untrained_model(ck)
        else:
            model, ck = build_model_from_checkpoint(checkpoint)
        ds = dataset or ck.get("dataset") or _cache_dataset(cache_dir)
        out = out or checkpoint.parent / (f"eval-{ds}" + ("-untrained" if untrained else ""))
        ensure_writable(out)                     # before the evaluation, whose results would be lost
        report = evaluate_model(model, ck, cache_dir, options, checkpoint=checkpoint,
                                weights="untrained" if untrained else "trained")
        pose_png = _pose_branch_outputs(model, report, device, batch_size)
        ratios = None
        if baseline is not None:
            try:
                ratios = map_ratios(report.payload, baseline)
            except EvalError as exc:
                raise EvalError(f"--compare {compare_path}: {exc}") from None
            report.payload["compare"] = {"results": str(compare_path),
                                         "baseline_weights": baseline.get("checkpoint", {}).get("weights"),
                                         "mAP_ratio": ratios}
    except (CheckpointError, CacheError, ManifestError, EvalError, WriteError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        _write_outputs(report, out, ck, untrained, compare_path, ratios, baseline, shot, pose_png)
    except WriteError as exc:
        raise click.ClickException(str(exc)) from None


def _pose_branch_outputs(model: Any, report: Any, device: str, batch_size: int) -> Optional[np.ndarray]:
    """With a pose branch that predicts joint maps: its PCKh@0.5 against the cached targets on
    the test images, per modality, into ``report.payload['pose_branch']``, and the picture of
    target vs predicted skeletons (returned, written with the other pictures)."""
    import torch

    from vireid.evaluation.pose_accuracy import branch_pckh, scores_joints
    from vireid.evaluation.pose_figure import pairs_per_identity, pose_figure

    if not scores_joints(model):
        return None
    dev = torch.device(device)
    scores = branch_pckh(model, report.cache, report.indices, dev, batch_size)
    report.payload["pose_branch"] = {"pckh@0.5": {m.upper(): s.to_json() for m, s in scores.items()}}
    pairs = pairs_per_identity(report.cache, report.indices)
    return pose_figure(model, report.cache, pairs, dev) if pairs else None


def _cache_dataset(cache_dir: Path) -> str:
    """The dataset of a cache's manifest (for the default --out), without loading the cache."""
    from vireid.data.manifest import Manifest

    return Manifest.load(cache_dir / "manifest.json", verify_hash=False).dataset


def _write_outputs(report: Any, out: Path, ck: Dict[str, Any], untrained: bool, compare_path: Optional[Path],
                   ratios: Optional[Dict[str, Any]], baseline: Optional[Dict[str, Any]], shot: str,
                   pose_png: Optional[np.ndarray] = None) -> None:
    """results.json first (the numbers), then results.md and the pictures; prints the table."""
    from vireid.evaluation.testing import ratio_table
    from vireid.evaluation.report import plot_cmc, write_results_json
    from vireid.io import atomic_write_text, write_error

    ds = report.dataset
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out, exc, "cannot create the folder") from None
    md = report.markdown
    if untrained:
        md = ("Untrained reference: the network of the checkpoint with random weights (seed "
              f"{(ck.get('config') or {}).get('seed', 0)}), no weights loaded.\n\n") + md
    write_results_json(out / "results.json", report.payload)
    atomic_write_text(out / "results.md", md + (f"\nmAP against {compare_path}:\n\n{ratio_table(ratios)}"
                                                if ratios is not None else ""))
    from vireid.data import registry

    plot_cmc(out / "cmc.png", report.curves, title=registry.get(ds).cmc_title(shot))
    first = next(iter(report.protocol_sets.values()))
    _ranking_png(out / "ranking.png", report.cache, report.row_of, report.indices, first, report.features["f_all"])
    pictures = [out / "cmc.png", out / "ranking.png"]
    if pose_png is not None:
        import cv2

        from vireid.io import WriteError, atomic_path

        with atomic_path(out / "pose.png", suffix=".png") as tmp:
            if not cv2.imwrite(str(tmp), pose_png):
                raise WriteError(f"{out / 'pose.png'}: cannot write the picture")
        pictures.append(out / "pose.png")
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(md)
    pose = report.payload.get("pose_branch")
    if pose:
        click.echo("Pose Estimation branch, PCKh@0.5 against the cached targets on the test images: " +
                   ", ".join(f"{m} {v['average']:.1f}%" if v["average"] is not None else f"{m} -"
                             for m, v in pose["pckh@0.5"].items()))
    if ratios is not None:
        base = baseline.get("checkpoint", {}).get("weights") or "baseline"
        click.echo(f"mAP against {compare_path} ({base}):\n" + ratio_table(ratios, baseline_name=base))
        known = [(r["ratio"], s, f) for s, by in ratios.items() for f, r in by.items() if r["ratio"] is not None]
        if known:
            low = min(known)
            click.echo(f"lowest mAP ratio: {low[0]:.2f}x ({low[1]}, {low[2]})")
    click.echo(f"results: {out / 'results.json'}, {out / 'results.md'}; pictures: "
               + ", ".join(str(p) for p in pictures))


def main(argv: Optional[list] = None) -> None:
    cli.main(args=argv, prog_name="vireid-eval", standalone_mode=True)


if __name__ == "__main__":
    main()
