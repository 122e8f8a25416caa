"""``vireid-eval``: the SYSU-MM01 and RegDB test protocols on a trained checkpoint.

Reads the checkpoint and the heatmap cache (its crops at the training input size and
its manifest); writes ``results.json``, ``results.md`` (the layout of the paper's Tables I
and II), ``cmc.png`` and ``ranking.png`` into ``--out``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import click
import numpy as np

from vireid import __version__

log = logging.getLogger(__name__)
SETTING_NAMES = {"all": "All-search", "indoor": "Indoor-search", "v2t": "Visible-to-Thermal",
                 "t2v": "Thermal-to-Visible"}
FEATURE_ROWS = {"f_id": "f_ID", "f_all": "f_ALL"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="vireid-eval")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A vireid-train checkpoint (RUN/last.pt or RUN/best.pt).")
@click.option("--cache", "cache_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The heatmap cache of the dataset (vireid-prep heatmaps): test crops and manifest.")
@click.option("--dataset", type=click.Choice(["sysu", "regdb"]), default=None,
              help="Protocol (default: the checkpoint's dataset).")
@click.option("--mode", type=click.Choice(["all", "indoor", "both"]), default="both", show_default=True,
              help="SYSU-MM01 search mode: gallery cameras 1,2,4,5 (all) or 1,2 (indoor).")
@click.option("--shot", type=click.Choice(["single", "multi"]), default="single", show_default=True,
              help="SYSU-MM01 gallery: one image per identity and camera, or ten.")
@click.option("--trials", default=None, type=click.IntRange(1, None),
              help="SYSU-MM01: number of gallery trials (default 10, seeds 0..9 as the literature).")
@click.option("--trial", default=None, type=click.IntRange(1, 10),
              help="RegDB: the trial the model was trained on (default: the checkpoint's).")
@click.option("--direction", type=click.Choice(["v2t", "t2v", "both"]), default="both", show_default=True,
              help="RegDB: visible query / thermal gallery (v2t) or the reverse.")
@click.option("--flip", is_flag=True, help="Average the features of each image and its mirror image.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Output folder (default: next to the checkpoint, eval-<dataset>).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, None))
@click.option("--progress/--no-progress", default=True, show_default=True)
def cli(checkpoint: Path, cache_dir: Path, dataset: Optional[str], mode: str, shot: str, trials: Optional[int],
        trial: Optional[int], direction: str, flip: bool, out: Optional[Path], device: str, batch_size: int,
        progress: bool) -> None:
    """Evaluate a checkpoint with the SYSU-MM01 (10 trials, all/indoor search) or RegDB
    (visible-to-thermal, thermal-to-visible) protocol, for the paper's f_ID and f_ALL."""
    from vireid.data.manifest import Manifest, ManifestError
    from vireid.data.shards import CacheError, HeatmapCache
    from vireid.engine.checkpoint import CheckpointError, build_model_from_checkpoint
    from vireid.engine.evaluate import evaluate_sets, regdb_sets, sysu_sets
    from vireid.engine.features import extract_features
    from vireid.evaluation.report import markdown_table, plot_cmc, table_entry, write_results_json

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        model, ck = build_model_from_checkpoint(checkpoint)
        cache = HeatmapCache(cache_dir)
        manifest = Manifest.load(cache_dir / "manifest.json")
    except (CheckpointError, CacheError, ManifestError) as exc:
        raise click.ClickException(str(exc)) from None
    dataset = dataset or ck.get("dataset") or manifest.dataset
    if manifest.dataset != dataset:
        raise click.ClickException(f"{cache_dir} holds {manifest.dataset} data, not {dataset}")
    want_hw = tuple(model.config.input_size)
    have_hw = tuple(cache.attrs["input_size"])
    if want_hw != have_hw:
        raise click.ClickException(f"{checkpoint} was trained at {want_hw[0]}x{want_hw[1]} but {cache_dir} holds "
                                   f"{have_hw[0]}x{have_hw[1]} crops: evaluate on a cache of the training size")
    trained_on = ck.get("manifest_hash")
    if trained_on and trained_on != manifest.hash:
        raise click.ClickException(f"{checkpoint} was trained on manifest {trained_on[:12]}, {cache_dir} holds "
                                   f"manifest {manifest.hash[:12]}: not the same data set")
    try:
        if dataset == "sysu":
            modes = ["all", "indoor"] if mode == "both" else [mode]
            trial_list = list(range(trials)) if trials else None
            protocol_sets = {SETTING_NAMES[m]: sysu_sets(manifest, m, shot, trials=trial_list) for m in modes}
        else:
            trial = trial or ck.get("trial") or 1
            dirs = ["v2t", "t2v"] if direction == "both" else [direction]
            protocol_sets = {SETTING_NAMES[d]: regdb_sets(manifest, trial, d) for d in dirs}
    except ValueError as exc:
        raise click.ClickException(f"{cache_dir}: {exc}") from None

    paths: List[str] = []
    for sets in protocol_sets.values():
        paths += [p for p in sets.paths() if p not in set(paths)]
    try:
        indices = [cache.index_of(p) for p in paths]
    except CacheError as exc:
        raise click.ClickException(str(exc)) from None
    row_of = {p: i for i, p in enumerate(paths)}
    feats = extract_features(model, cache, indices, batch_size=batch_size, device=device, flip=flip,
                             progress=progress)
    feats = {k: v for k, v in feats.items() if k in FEATURE_ROWS}

    out = out or checkpoint.parent / f"eval-{dataset}"
    out.mkdir(parents=True, exist_ok=True)
    table: Dict[str, Dict[str, Dict[str, float]]] = {FEATURE_ROWS[k]: {} for k in feats}
    payload: Dict[str, object] = {
        "protocol": {"dataset": dataset, "shot": shot if dataset == "sysu" else None, "flip": flip,
                     "settings": {name: s.name for name, s in protocol_sets.items()}},
        "checkpoint": {"path": str(checkpoint), "sha256": _sha256(checkpoint), "epoch": ck.get("epoch")},
        "manifest_hash": manifest.hash, "cache": str(cache_dir), "config": ck.get("config"),
        "code_version": __version__, "results": {},
    }
    curves: Dict[str, Sequence[float]] = {}
    for setting, sets in protocol_sets.items():
        res = evaluate_sets(sets, feats, row_of, dataset)
        payload["results"][setting] = {
            "trials": res.trials,
            "features": {FEATURE_ROWS[k]: {"mean": res.summary[k].mean, "std": res.summary[k].std,
                                           "per_trial": [table_entry(r) for r in res.per_feature[k]]}
                         for k in feats},
        }
        for k in feats:
            table[FEATURE_ROWS[k]][setting] = res.summary[k].mean
            curves[f"{FEATURE_ROWS[k]} {setting}"] = res.summary[k].cmc_mean
    md = markdown_table(table, dataset=dataset)
    write_results_json(out / "results.json", payload)
    from vireid.io import atomic_write_text
    atomic_write_text(out / "results.md", md)
    plot_cmc(out / "cmc.png", curves, title=f"{dataset.upper()} CMC ({shot} shot)" if dataset == "sysu" else "RegDB CMC")
    first = next(iter(protocol_sets.values()))
    _ranking_png(out / "ranking.png", cache, row_of, indices, first, feats["f_all"])
    click.echo(md)
    click.echo(f"results: {out / 'results.json'}, {out / 'results.md'}; pictures: {out / 'cmc.png'}, "
               f"{out / 'ranking.png'}")


def main(argv: Optional[list] = None) -> None:
    cli.main(args=argv, prog_name="vireid-eval", standalone_mode=True)


if __name__ == "__main__":
    main()
