"""``vireid-gradcam``: Grad-CAM pictures of the ReID branch and the pose mask (paper Figs. 4, 6).

    vireid-gradcam --checkpoint runs/full/best.pt --baseline runs/baseline/best.pt --cache cache \\
                   --ids 1,5,9 --out gradcam

One PNG per identity (``OUT/id_0001.png``) and ``OUT/gradcam.json`` (images, scores, peaks,
the maps' shares on the body and their summary per model).
The maps are computed by :mod:`vireid.inference.gradcam`; the picture's layout is in
:mod:`vireid.inference.gradcam_figure`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import click

from vireid._version import __version__
from vireid.cli.options import CONTEXT

HELP = """Grad-CAM maps of the ReID branch, and the pose branch's mask (channel mean of sigmoid(F_P),
eq. 7), for test identities of a heatmap cache (or training ones, --split train): the paper's
Figs. 4 and 6.

\b
Writes OUT/id_<pid>.png per identity: one row per model (--baseline first, then --checkpoint),
columns RGB crop | RGB Grad-CAM | RGB pose mask | IR crop | IR Grad-CAM | IR pose mask (grey for a
model without the pose branch), and OUT/gradcam.json with the crops, scores and map peaks.

\b
On the body: each crop's keypoints in the cache give a body box (their bounding box, widened by
10% of its width per side and 5% of its height). Per model, over the identities shown, it prints
the share of Grad-CAM mass inside the box against the box's share of the crop (1.00x: no more on
the body than a flat map), and for the full model the pose mask's mean on minus off the body.
Any cache of the same images can be given, e.g. the exact-keypoints one for a model trained on
an estimator's cache.

\b
Score (--score auto): the identity's own class logit when it is a training class, else the cosine
similarity of the crop's f_ID to the mean f_ID of the identity's crops of the other modality (what
retrieval ranks by), else the norm of the stripe embeddings. Layer (--layer): f_id, the ReID
features the PCB heads pool (masked by sigmoid(F_P) when the model has the pose branch, eq. 9), or
f_id2, the ReID branch's layer4 output before the mask (eq. 8).
"""


def _parse_ids(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[List[int]]:
    if value is None:
        return None
    try:
        ids = [int(tok) for tok in value.replace(" ", "").split(",") if tok]
    except ValueError:
        raise click.BadParameter(f"{value!r}: give identities as integers separated by commas, e.g. 1,5,9") from None
    if not ids:
        raise click.BadParameter("no identity given")
    return list(dict.fromkeys(ids))


@click.command(help=HELP, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="vireid-gradcam")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A vireid-train checkpoint (the full model; RUN/best.pt or RUN/last.pt).")
@click.option("--baseline", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A second checkpoint (e.g. the Table IV baseline), drawn in the row above.")
@click.option("--cache", "cache_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The heatmap cache (vireid-prep heatmaps) the crops are read from.")
@click.option("--ids", callback=_parse_ids, default=None,
              help="Test identities, comma-separated (default: the first --num test identities).")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True,
              help="Whose identities --ids names: the test identities, or the checkpoint's training classes "
                   "(whose class logit --score auto then explains).")
@click.option("--num", default=4, show_default=True, type=click.IntRange(1, None),
              help="Without --ids: how many test identities.")
@click.option("--score", type=click.Choice(["auto", "logit", "cross", "norm"]), default="auto", show_default=True,
              help="What the gradients are of (see above).")
@click.option("--layer", type=click.Choice(["f_id", "f_id2"]), default="f_id", show_default=True,
              help="Grad-CAM's target layer.")
@click.option("--cell-height", default=288, show_default=True, type=click.IntRange(32, 2048),
              help="Height in pixels of each picture cell (the crop is scaled to it).")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False), help="Output folder.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when there is one), cpu, cuda or cuda:N.")
def cli(checkpoint: Path, baseline: Optional[Path], cache_dir: Path, ids: Optional[List[int]], split: str, num: int,
        score: str, layer: str, cell_height: int, out: Path, device: str) -> None:
    import cv2

    from vireid.data.manifest import Manifest, ManifestError
    from vireid.cache.reader import CacheError, HeatmapCache
    from vireid.model.checkpoint import CheckpointError
    from vireid.inference.extractor import ExtractorError, FeatureExtractor
    from vireid.inference.gradcam_figure import render
    from vireid.inference.gradcam_job import (GradCamError, Model, check_compatible, explain_identity,
                                              summarise, test_identities)
    from vireid.io import WriteError, atomic_write_bytes, atomic_write_json, ensure_writable, write_error

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        ensure_writable(out)
        cache = HeatmapCache(cache_dir)
        manifest = Manifest.load(cache_dir / "manifest.json")
        models = []
        for role, path in (("baseline", baseline), ("full", checkpoint)):
            if path is not None:
                models.append(Model(role if baseline is not None else path.name, path,
                                    FeatureExtractor(path, device=device, feature="f_id", flip=False)))
        for m in models:
            check_compatible(m, cache, manifest)
        available = (test_identities(manifest, models[-1].extractor.checkpoint_data) if split == "test"
                     else sorted(models[-1].label_map))
        meta = cache.metadata()
        meta["keypoints"] = cache.keypoints()
        present = set(int(p) for p in meta["pid"])
        available = [p for p in available if p in present]
        if ids is None:
            ids = available[:num]
            if not ids:
                raise GradCamError(f"{cache_dir}: no {split} identity in the cache")
        unknown = [p for p in ids if p not in set(available)]
        if unknown:
            shown = ", ".join(str(p) for p in available[:20]) + (" ..." if len(available) > 20 else "")
            raise GradCamError(f"--ids: {', '.join(str(p) for p in unknown)} not a {split} identity of {cache_dir} "
                               f"({split} identities: {shown or 'none'})")
        out.mkdir(parents=True, exist_ok=True)
        records = []
        for pid in ids:
            res = explain_identity(models, cache, meta, pid, score=score, layer=layer)
            picture = render(res.rows, cache.geometry.input_size, cell_height)
            ok, buf = cv2.imencode(".png", picture)
            if not ok:
                raise write_error(out / f"id_{pid:04d}.png", OSError("PNG encoding failed"))
            atomic_write_bytes(out / f"id_{pid:04d}.png", buf.tobytes())
            res.record["png"] = f"id_{pid:04d}.png"
            records.append(res.record)
            scores = "; ".join(f"{e['role']} " + ", ".join(f"{k.upper()} {e[k]['score']} {e[k]['value']:.3f}"
                                                          for k in ("rgb", "ir") if k in e)
                               for e in res.record["models"])
            click.echo(f"{out / res.record['png']}: id {pid} ({scores})")
        summary = summarise(records)
        atomic_write_json(out / "gradcam.json", {"code_version": __version__, "cache": str(cache_dir),
                                                 "split": split, "score": score, "layer": layer,
                                                 "summary": summary, "identities": records})
        for role, got in summary.items():
            line = f"{role}: mean score {got['score']:.3f}"
            if got["images"]:
                line += (f"; Grad-CAM mass on the body box {100 * got['cam_share']:.1f}% (the box is "
                         f"{100 * got['area']:.1f}% of the crop: {got['lift']:.2f}x chance), {got['images']} images")
            if got["zero_maps"]:
                line += f"; {got['zero_maps']} all-zero map(s) (no positive evidence) left out"
            if "mask_contrast" in got:
                line += f"; pose mask on - off the body {got['mask_contrast']:+.4f}"
            click.echo(line)
    except (CheckpointError, CacheError, ManifestError, ExtractorError, GradCamError, WriteError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(str(write_error(out, exc))) from None


def main(argv: Optional[list] = None) -> None:
    cli.main(args=argv, prog_name="vireid-gradcam", standalone_mode=True)


if __name__ == "__main__":
    main()
