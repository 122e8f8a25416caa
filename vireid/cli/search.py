"""``vireid-search``: query images against a feature file of the other modality.

    vireid-search --gallery sysu_test_rgb.h5 ir_query.jpg --top-k 10 --out search/

Writes ``OUT/topk.json`` (per query: the top-k gallery paths with cosine similarity,
identity, camera and whether it is the query's identity, where known) and
``OUT/ranking.png`` (each query, then its top-k crops with their scores; green / red
where identities are known, grey otherwise).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Tuple

import click

from vireid._version import __version__
from vireid.cli.options import CONTEXT, rerank_config, rerank_options

HELP = """Search a feature file (vireid-extract) with one or more QUERY images, e.g. an IR crop
against the RGB features of a gallery; QUERY may also be a folder of crops.

\b
The queries are extracted with the gallery's own checkpoint, feature type and flip setting
(recorded in the file; --checkpoint names the file if it moved, and a different checkpoint is
refused). --query-modality auto takes the other modality of a one-modality gallery. Writes
OUT/topk.json and OUT/ranking.png (scores: cosine similarity, or the re-ranked distance).
"""


@click.command(help=HELP, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="vireid-search")
@click.argument("queries", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--gallery", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Feature file of the gallery (vireid-extract).")
@click.option("--checkpoint", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The checkpoint the gallery was extracted with (default: the path it records).")
@click.option("--query-modality", type=click.Choice(["auto", "rgb", "ir"]), default="auto", show_default=True,
              help="Modality of the queries (auto: the other one of the gallery's, else from the pixels).")
@click.option("--query-pid", "query_pids", multiple=True, type=int,
              help="Identity of each query, in order (repeat once per query): frames matches green / red.")
@click.option("--top-k", default=10, show_default=True, type=click.IntRange(1, None))
@rerank_options
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output folder (topk.json, ranking.png).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def cli(queries: Tuple[Path, ...], gallery: Path, checkpoint: Optional[Path], query_modality: str,
        query_pids: Tuple[int, ...], top_k: int, rerank: bool, k1: int, k2: int, lambda_value: float, out: Path,
        device: str) -> None:
    from vireid.model.checkpoint import CheckpointError
    from vireid.inference.extractor import ExtractorError, FeatureExtractor, ImageItem, load_bgr, modality_code
    from vireid.inference.featurefile import FeatureFile, FeatureFileError, check_origin
    from vireid.inference.search import ranking_json, ranking_png, rank_gallery
    from vireid.inference.sources import folder_items
    from vireid.io import WriteError, atomic_write_json, ensure_writable, write_error

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        ensure_writable(out)                          # before the queries are ranked
        feats = FeatureFile.load(gallery)
        paths = []
        for q in queries:
            paths += [Path(it.source) for it in folder_items(q)[0]] if q.is_dir() else [q]
        if query_pids and len(query_pids) != len(paths):
            raise ExtractorError(f"--query-pid given {len(query_pids)} times for {len(paths)} query images")
        pids = list(query_pids) or [-1] * len(paths)
        code = modality_code(query_modality)
        gallery_modalities = set(feats.modality.tolist())
        if code is None and len(gallery_modalities) == 1:
            code = 1 - gallery_modalities.pop()
        ck = checkpoint or Path(feats.meta.get("checkpoint", ""))
        if not ck.is_file():
            raise CheckpointError(f"{ck}: the gallery's checkpoint is not there; pass --checkpoint")
        extractor = FeatureExtractor(ck, device=device, feature=feats.meta["feature"], flip=bool(feats.meta["flip"]))
        check_origin(str(gallery), feats.meta, extractor.describe())
        items = [ImageItem(str(p), code) for p in paths]
        q_feats, q_mods = extractor.extract_items(items, return_modality=True)
        config = rerank_config(rerank, k1, k2, lambda_value)
        ranking = rank_gallery(q_feats, feats.features, top_k, config)
        doc = ranking_json([str(p) for p in paths], q_mods, pids, feats, ranking, config)
        images = [load_bgr(it) for it in items]
    except (CheckpointError, ExtractorError, FeatureFileError, WriteError) as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:                          # e.g. a re-ranking too large for memory
        raise click.ClickException(f"{gallery}: {exc}") from None
    try:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(out, exc, "cannot create the folder") from None
        atomic_write_json(out / "topk.json", doc)
        ranking_png(out / "ranking.png", images, q_mods, pids, feats, ranking)
    except WriteError as exc:
        raise click.ClickException(str(exc)) from None
    score = "distance" if config is not None else "similarity"
    for q in doc["queries"]:
        click.echo(f"{q['query']} ({q['modality'].upper()}{'' if q['pid'] is None else ', id %d' % q['pid']}):")
        for hit in q["top"][:5]:
            mark = {True: " correct", False: " wrong", None: ""}[hit["correct"]]
            click.echo(f"  {hit['rank']:>2}. {hit['path']}  {score} {hit[score]:.3f}"
                       f"{'' if hit['pid'] is None else '  id %d' % hit['pid']}{mark}")
    click.echo(f"results: {out / 'topk.json'}; picture: {out / 'ranking.png'}")


def main(argv: Optional[list] = None) -> None:
    cli.main(args=argv, prog_name="vireid-search", standalone_mode=True)


if __name__ == "__main__":
    main()
