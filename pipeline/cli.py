"""``vireid-prep``: the offline stage (manifests, synthetic data, pose heatmap cache).

Every sub-command turns a user's mistake (wrong root, unknown dataset, corrupt file)
into a one-line or listed error and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import click

from vireid import __version__
from vireid.data.manifest import ManifestError
from vireid.data.spec import DATASETS, SpecError
from vireid.io import atomic_write_text

MAX_LISTED = 50


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="vireid-prep")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Offline preprocessing for vireid.

    \b
    Typical use on a real dataset:
      vireid-prep manifest --dataset sysu --root /data/SYSU-MM01 --out sysu.manifest.json
      vireid-prep heatmaps --dataset sysu --root /data/SYSU-MM01 --out cache/sysu
    and on built-in synthetic data (tests, demo):
      vireid-prep synth --layout sysu --out demo/SYSU-MM01 --ids 24 --seed 0
    """
    _setup_logging(verbose)


@cli.command("manifest")
@click.option("--dataset", required=True, type=click.Choice(DATASETS),
              help="Which dataset layout to expect (declared in data_manifests/<dataset>.yaml).")
@click.option("--root", required=True, type=click.Path(path_type=Path),
              help="Dataset root: the folder holding cam1..cam6 and exp/ (SYSU-MM01), Visible/, Thermal/ "
                   "and idx/ (RegDB), or TrainVal_images/ and TrainVal_pose_annotations/ (LIP).")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Manifest JSON to write (atomically). Later stages record its content hash.")
@click.option("--allow-partial", is_flag=True,
              help="Accept a partial or custom copy: count and coverage problems become warnings "
                   "recorded in the manifest instead of errors. Corrupt images stay errors.")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1, None),
              help="Parallel workers decoding images.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def manifest_cmd(dataset: str, root: Path, out: Path, allow_partial: bool, jobs: int, progress: bool) -> None:
    """Scan a dataset root into a manifest and check it against the declared layout.

    Every image is decoded once (unreadable and zero-byte files are reported with their
    path), identity lists and index files are parsed (malformed lines reported with file
    and line), and counts are compared with the real dataset's. All problems are listed
    at once; the command exits with status 1 if any is an error.
    """
    from vireid.data.scan import ScanError, scan

    try:
        manifest = scan(dataset, root, allow_partial=allow_partial, jobs=jobs, progress=progress)
    except ScanError as exc:
        fatal = [p for p in exc.problems if p.fatal]
        if len(fatal) == 1 and fatal[0].kind == "missing-root":
            raise click.ClickException(f"--root {root}: not a directory (expected the {dataset} dataset root)")
        click.echo(f"error: {exc.root} does not match the {dataset} layout: {len(fatal)} problem(s)", err=True)
        for p in fatal[:MAX_LISTED]:
            click.echo(f"  {p}", err=True)
        if len(fatal) > MAX_LISTED:
            report = out.with_name(out.name + ".problems.txt")
            atomic_write_text(report, "\n".join(str(p) for p in fatal) + "\n")
            click.echo(f"  ... and {len(fatal) - MAX_LISTED} more (all listed in {report})", err=True)
        if not allow_partial and any(p.kind in ("count-mismatch", "missing-folder", "id-without-images")
                                     for p in fatal):
            click.echo("hint: for a partial or custom copy of the dataset, pass --allow-partial", err=True)
        sys.exit(1)
    manifest.save(out)
    counts = manifest.counts()
    click.echo(f"{out}: {counts['images']} images ({counts.get('rgb_images', 0)} RGB, "
               f"{counts.get('ir_images', 0)} IR), {counts['identities']} identities, hash {manifest.hash[:16]}")
    if manifest.warnings:
        click.echo(f"accepted with {len(manifest.warnings)} warning(s) (logged above; recorded in the manifest)",
                   err=True)


@cli.command("synth")
@click.option("--layout", required=True, type=click.Choice(DATASETS),
              help="Which real dataset layout to write.")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output dataset root (created; must be empty or an earlier synth output).")
@click.option("--ids", default=24, show_default=True, type=click.IntRange(2, None),
              help="Number of identities (LIP: number of distinct people).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed: the same seed writes the same bytes.")
@click.option("--images-per-camera", default=None, type=click.IntRange(1, None),
              help="Images per identity and camera (RegDB: per modality). Default depends on the layout.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def synth_cmd(layout: str, out: Path, ids: int, seed: int, images_per_camera: Optional[int], progress: bool) -> None:
    """Write a small synthetic data set in exactly a real dataset's layout.

    Each identity is a rendered person with stable traits (build, clothing colours and
    pattern, carried objects) in varied poses and backgrounds; RGB cameras see colour,
    IR cameras thermal-like grey levels. The 16 LIP joints of every person are known and
    written beside the images (vireid_keypoints.json; the LIP layout writes its CSVs).
    """
    from pipeline.synth import synthesize

    try:
        summary = synthesize(layout, out, ids=ids, seed=seed, images_per_camera=images_per_camera,
                             progress=progress)
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{out}: {summary}")


def main(argv: Optional[list] = None) -> None:
    """Console entry point; maps library errors to one-line messages."""
    try:
        cli.main(args=argv, prog_name="vireid-prep", standalone_mode=True)
    except (SpecError, ManifestError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
