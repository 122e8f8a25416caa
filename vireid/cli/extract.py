"""``vireid-extract``: features of a folder of crops or of a manifest's images -> a feature file.

    vireid-extract --checkpoint RUN/best.pt --images crops/ --modality rgb --out gallery.h5
    vireid-extract --checkpoint RUN/best.pt --manifest sysu.manifest.json --split test --modality rgb \\
                   --out sysu_test_rgb.h5

The file format and the resumable job are in :mod:`vireid.inference.featurefile`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Tuple

import click

from vireid._version import __version__
from vireid.cli.options import CONTEXT

HELP = """Extract L2-normalised features of a trained checkpoint for a folder of crops (--images)
or for the images of a vireid-prep manifest (--manifest), into an HDF5 feature file (features,
paths, modality, and identity and camera where the manifest knows them).

\b
Resumable: the work is saved in chunks (--chunk-size) beside OUT; after an interruption the
same command continues where it stopped. A partial extraction or an existing OUT made with
another checkpoint, feature type or flip setting is refused (never mixed); --restart discards
a partial one, --overwrite replaces OUT.
"""


@click.command(help=HELP, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="vireid-extract")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A vireid-train checkpoint (RUN/best.pt or RUN/last.pt).")
@click.option("--images", "images_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="A folder of person crops (searched recursively: jpg, jpeg, png, bmp).")
@click.option("--manifest", "manifest_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A vireid-prep manifest: its images, with modality, identity and camera.")
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="With --manifest: the dataset folder (default: the one recorded in the manifest).")
@click.option("--split", multiple=True, help="With --manifest: only this split (repeatable), e.g. test.")
@click.option("--camera", "cameras", multiple=True, help="With --manifest: only this camera (repeatable), e.g. cam1.")
@click.option("--modality", type=click.Choice(["auto", "rgb", "ir"]), default="auto", show_default=True,
              help="--images: the crops' modality (auto: grey crops are IR). --manifest: keep only this modality.")
@click.option("--feature", type=click.Choice(["f_id", "f_all"]), default="f_all", show_default=True,
              help="f_id: ReID branch (eq. 12); f_all: with the pose branch (eq. 13).")
@click.option("--flip/--no-flip", default=True, show_default=True,
              help="Average each image's features with its mirror image's.")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="Feature file (.h5).")
@click.option("--chunk-size", default=1024, show_default=True, type=click.IntRange(1, None),
              help="Images per saved chunk (the unit of resumption).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, None))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--restart", is_flag=True, help="Discard an interrupted extraction into OUT and start again.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def cli(checkpoint: Path, images_dir: Optional[Path], manifest_path: Optional[Path], root: Optional[Path],
        split: Tuple[str, ...], cameras: Tuple[str, ...], modality: str, feature: str, flip: bool, out: Path,
        chunk_size: int, batch_size: int, device: str, overwrite: bool, restart: bool, progress: bool) -> None:
    from vireid.data.manifest import ManifestError
    from vireid.model.checkpoint import CheckpointError
    from vireid.inference.extractor import ExtractorError, FeatureExtractor
    from vireid.inference.featurefile import ExtractionJob, FeatureFileError
    from vireid.inference.sources import folder_items, manifest_items
    from vireid.io import WriteError, ensure_writable

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if (images_dir is None) == (manifest_path is None):
        raise click.UsageError("give either --images DIR or --manifest FILE")
    if images_dir is not None and (root or split or cameras):
        raise click.UsageError("--root, --split and --camera apply to --manifest only")
    try:
        ensure_writable(out.parent)                   # before any image is read
        if images_dir is not None:
            items, names, meta = folder_items(images_dir, modality)
        else:
            items, names, meta = manifest_items(manifest_path, root, split, modality, cameras)
        extractor = FeatureExtractor(checkpoint, device=device, feature=feature, flip=flip, batch_size=batch_size)
        meta["code_version"] = __version__
        job = ExtractionJob(extractor, items, names, out, meta, chunk_size=chunk_size, overwrite=overwrite)
        result = job.run(progress=progress, restart=restart)
    except (CheckpointError, ExtractorError, FeatureFileError, ManifestError, WriteError) as exc:
        raise click.ClickException(str(exc)) from None
    from vireid.inference.featurefile import FeatureFile
    from vireid.data.modality import Modality

    done = FeatureFile.load(result.path)
    mods = done.modality
    known = int((done.pid >= 0).sum())
    n_rgb, n_ir = int((mods == Modality.RGB).sum()), int((mods == Modality.IR).sum())
    click.echo(f"{out}: {len(done)} images ({n_rgb} RGB, {n_ir} IR, "
               f"{known} with identities), {feature} {extractor.dim}-d, flip {'on' if flip else 'off'}, "
               f"checkpoint {checkpoint} (sha256 {extractor.checkpoint_sha256[:12]}); "
               f"{result.chunks_extracted} chunk(s) extracted, {result.chunks_reused} reused")


def main(argv: Optional[list] = None) -> None:
    cli.main(args=argv, prog_name="vireid-extract", standalone_mode=True)


if __name__ == "__main__":
    main()
