"""``vireid-prep``: the offline stage (manifests, synthetic data, pose heatmap cache).

Every sub-command turns a user's mistake (wrong root, unknown dataset, corrupt file)
into a one-line or listed error and a non-zero exit code, never a traceback. Commands
that write check their output folder before any work, and a failed write (disk full,
permission) is one line naming the file, with every earlier file left as it was.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import click
from click.core import ParameterSource

from vireid._version import __version__
from vireid.cache.format import ESTIMATOR_NAMES, IMAGE_FORMATS, CacheConfig
from vireid.data.manifest import ManifestError
from vireid.cli.datasets import DatasetChoice
from vireid.data.spec import SpecError
from pipeline.cli_util import MAX_LISTED, one_line_write_errors, writable
from vireid.io import atomic_write_text


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
      vireid-prep heatmaps --dataset sysu --root /data/SYSU-MM01 --out cache/sysu --weights lip_gccpm.pth
    and on built-in synthetic data (tests, demo):
      vireid-prep synth --layout sysu --out demo/SYSU-MM01 --ids 24 --seed 0
    """
    _setup_logging(verbose)


@cli.command("manifest")
@click.option("--dataset", required=True, type=DatasetChoice("all"),
              help="Which dataset layout to expect (declared in data_manifests/<dataset>.yaml; the "
                   "datasets are those of vireid/data/registry.py).")
@click.option("--root", required=True, type=click.Path(path_type=Path),
              help="Dataset root: the folder holding cam1..cam6 and exp/ (SYSU-MM01), Visible/, Thermal/ "
                   "and idx/ (RegDB), idx/, test_vis/ and test_nir/ (LLCM), or TrainVal_images/ and "
                   "TrainVal_pose_annotations/ (LIP).")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Manifest JSON to write (atomically). Later stages record its content hash.")
@click.option("--allow-partial", is_flag=True,
              help="Accept a partial or custom copy: count and coverage problems become warnings "
                   "recorded in the manifest instead of errors. Corrupt images stay errors.")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1, None),
              help="Parallel workers decoding images.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@one_line_write_errors
def manifest_cmd(dataset: str, root: Path, out: Path, allow_partial: bool, jobs: int, progress: bool) -> None:
    """Scan a dataset root into a manifest and check it against the declared layout.

    Every image is decoded once (unreadable and zero-byte files are reported with their
    path), identity lists and index files are parsed (malformed lines reported with file
    and line), and counts are compared with the real dataset's. All problems are listed
    at once; the command exits with status 1 if any is an error.
    """
    from vireid.data.scan import scan
    from vireid.data.scan_checks import ScanError

    writable(out.parent)
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
@click.option("--layout", required=True, type=DatasetChoice("synth"),
              help="Which real dataset layout to write.")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output dataset root (created; must be empty or an earlier synth output).")
@click.option("--ids", default=24, show_default=True, type=click.IntRange(2, None),
              help="Number of identities (LIP: number of distinct people).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed: the same seed writes the same bytes.")
@click.option("--images-per-camera", default=None, type=click.IntRange(1, None),
              help="Images per identity and camera (RegDB: per modality). Default depends on the layout.")
@click.option("--ir-levels", type=click.Choice(["dye", "random"]), default="dye", show_default=True,
              help="Layouts with infrared images: garments' infrared grey levels: 'dye' follows each colour by one fixed map "
                   "(a shortcut a network can learn), 'random' is drawn per identity independently of the "
                   "colours, so only build, pose, pattern and carried items are shared across modalities.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@one_line_write_errors
def synth_cmd(layout: str, out: Path, ids: int, seed: int, images_per_camera: Optional[int], ir_levels: str,
              progress: bool) -> None:
    """Write a small synthetic data set in exactly a real dataset's layout.

    Each identity is a rendered person with stable traits (build, clothing colours and
    pattern, carried objects) in varied poses and backgrounds; RGB cameras see colour,
    IR cameras thermal-like grey levels. The 16 LIP joints of every person are known and
    written beside the images (vireid_keypoints.json; the LIP layout writes its CSVs).
    """
    from pipeline.synth import synthesize

    # the set is built in a staging folder beside OUT and renamed into place
    writable(out.parent, f"the folder of --out {out}")
    try:
        summary = synthesize(layout, out, ids=ids, seed=seed, images_per_camera=images_per_camera,
                             progress=progress, ir_levels=ir_levels)
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{out}: cannot write the data set ({exc.strerror or exc}); nothing was "
                                   "written under that name") from None
    click.echo(f"{out}: {summary}")


class SizeType(click.ParamType):
    """``HEIGHTxWIDTH`` on the command line, an ``(H, W)`` tuple in the program (a tuple default
    passes through): the one conversion of ``--input-size``."""

    name = "HxW"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Tuple[int, int]:
        if isinstance(value, tuple):
            return value
        try:
            h, w = (int(v) for v in str(value).lower().split("x"))
        except ValueError:
            self.fail(f"{value!r}: expected HEIGHTxWIDTH, e.g. 288x144", param, ctx)
        return h, w

    @staticmethod
    def format(size: Tuple[int, int]) -> str:
        """``(288, 144)`` -> ``'288x144'`` (help text, error labels)."""
        return "x".join(map(str, size))


SIZE = SizeType()
#: CacheConfig's defaults: the options' defaults (the dataclass is the one source)
CACHE_DEFAULTS = CacheConfig()


def _cache_config(config_path: Optional[Path], overrides: Sequence[str], options: Dict[str, Any]) -> CacheConfig:
    """``heatmaps``' CacheConfig: its defaults, then ``--config`` (with what it inherits), the
    ``KEY=VALUE`` overrides and those ``options`` given on the command line, each later layer
    over the earlier ones, read and checked as vireid-train's configuration
    (:mod:`vireid.config_loader`)."""
    from vireid.config_loader import ConfigError, build_layers, override_layer, read_yaml

    ctx = click.get_current_context()
    given = {k: v for k, v in options.items() if ctx.get_parameter_source(k) is not ParameterSource.DEFAULT}
    try:
        layers = read_yaml(config_path) if config_path is not None else []
        layers += [override_layer(o, CacheConfig) for o in overrides]
        layers += [(f"--{k.replace('_', '-')} {SIZE.format(v) if isinstance(v, tuple) else v}", {k: v})
                   for k, v in given.items()]
        return build_layers(CacheConfig, layers)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _heatmaps_device(device: str, k: int, n: int) -> str:
    """``--device`` resolved (``auto``: CUDA when there is one); with ``n`` parts on CUDA each
    process takes its own GPU (torchrun's ``LOCAL_RANK``, else ``k``)."""
    from vireid.cli.options import resolve_device_option

    dev = resolve_device_option(device)
    if dev.type == "cuda" and dev.index is None and n > 1:
        return f"cuda:{os.environ.get('LOCAL_RANK', k)}"
    return str(dev)


def _parse_part(value: Optional[str]) -> Tuple[int, int]:
    if value is None:
        # under torchrun each process takes its rank's share of the shards
        rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
        return (int(rank), int(world)) if rank is not None and world is not None else (0, 1)
    try:
        k, n = (int(v) for v in value.split("/"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected K/N, e.g. 0/4") from None
    if not (n >= 1 and 0 <= k < n):
        raise click.BadParameter(f"{value!r}: need 0 <= K < N")
    return k, n


@cli.command("heatmaps")
@click.option("--dataset", required=True, type=DatasetChoice("all"), help="Dataset layout of --root.")
@click.option("--root", required=True, type=click.Path(path_type=Path), help="Dataset root (as for `manifest`).")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Cache folder: cache.json, shard-*.h5, index.json, manifest.json, skipped.json.")
@click.option("--manifest", "manifest_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Use this manifest instead of scanning --root (a rerun reuses OUT/manifest.json).")
@click.option("--allow-partial", is_flag=True, help="When scanning: accept a partial copy (see `manifest`).")
@click.option("--estimator", type=click.Choice(ESTIMATOR_NAMES), default="lip", show_default=True,
              help="lip: GCCPM pretrained on LIP, the paper's (needs --weights); blazepose: mediapipe's model, "
                   "offline (install extra); keypoints: known keypoints (--keypoints, default "
                   "ROOT/vireid_keypoints.json). Without --weights another estimator must be named: none is "
                   "chosen silently. cache.json records which one made the cache (and its weights' sha256).")
@click.option("--weights", type=click.Path(path_type=Path, dir_okay=False),
              help="GCCPM checkpoint for --estimator lip ({'state_dict': ...}); never downloaded.")
@click.option("--keypoints", "keypoints_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Keypoint file for --estimator keypoints (vireid-keypoints/1 or COCO-style JSON).")
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when there is one), cpu, cuda or cuda:N (lip estimator).")
@click.option("--estimator-size", type=click.IntRange(32, None), default=None,
              help="Square input side of the lip estimator, a multiple of 8. Default: the side the "
                   "checkpoint was trained at (recorded by `train-estimator`), else 256 (GCCPM's).")
@click.option("--batch-size", type=click.IntRange(1, None), default=None, help="Images per estimator call.")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1, None),
              help="Threads decoding images.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="YAML file of cache settings: input_size, stride, sigma, image_format, jpeg_quality, shard_size "
                   "(`inherit: other.yaml` as in vireid-train presets). Trailing KEY=VALUE arguments override it, "
                   "and the options below override both.")
@click.option("--input-size", type=SIZE, default=CACHE_DEFAULTS.input_size, metavar="HxW",
              help="Stored crop size HxW = the training input size.  "
                   f"[default: {SIZE.format(CACHE_DEFAULTS.input_size)}]")
@click.option("--stride", default=CACHE_DEFAULTS.stride, show_default=True, type=int,
              help="Heatmap stride: 72x36 maps for 288x144 (what the pose branch predicts).")
@click.option("--sigma", default=CACHE_DEFAULTS.sigma, show_default=True, type=float,
              help="Gaussian sigma in input pixels (at least 0.5).")
@click.option("--image-format", type=click.Choice(IMAGE_FORMATS), default=CACHE_DEFAULTS.image_format, show_default=True,
              help="raw: crops and heatmaps uncompressed, each row read with one pread: the fast "
                   "training pipeline (benchmarks/bench_data_pipeline.py), 162 KiB per 288x144 image, "
                   "about 5.3 GiB for SYSU-MM01's 34,167 images. jpeg: q95 crops and gzip heatmaps, "
                   "about 15 KiB per image (0.5 GiB for SYSU-MM01), but every read decodes a JPEG, "
                   "several times slower (see docs/cache.md).")
@click.option("--shard-size", default=CACHE_DEFAULTS.shard_size, show_default=True, type=int,
              help="Images per HDF5 shard.")
@click.option("--on-error", type=click.Choice(["fail", "skip"]), default="fail", show_default=True,
              help="Unreadable image (also one found while scanning --root): stop with its path, or skip it "
                   "and list it in OUT/skipped.json. An image changed since the manifest always stops.")
@click.option("--part", default=None,
              help="K/N: this process writes shards s with s %% N == K (several processes or GPUs; "
                   "default from torchrun's RANK/WORLD_SIZE, else 0/1).")
@click.option("--repair", is_flag=True,
              help="Check the cache at OUT (as `verify`) and recompute only its damaged or missing rows and "
                   "shards, each rewritten atomically; shards without row checksums get them, from their "
                   "stored rows. Give the build's arguments (same --batch-size), then it ends with `verify`.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@one_line_write_errors
def heatmaps_cmd(dataset: str, root: Path, out: Path, manifest_path: Optional[Path], allow_partial: bool,
                 estimator: Optional[str], weights: Optional[Path], keypoints_path: Optional[Path], device: str,
                 estimator_size: Optional[int], batch_size: Optional[int], jobs: int, config_path: Optional[Path],
                 input_size: Tuple[int, int], stride: int, sigma: float, image_format: str, shard_size: int,
                 on_error: str, part: Optional[str],
                 repair: bool, progress: bool, overrides: Tuple[str, ...]) -> None:
    """Run a pose estimator over every image and cache heatmaps in HDF5 shards.

    Resumable: rerun the same command after an interruption and finished shards are kept.
    A second process on the same cache (and part) is refused. Every row carries checksums
    (`verify` checks them); --repair recomputes what they find damaged.

    The cache settings come from --config FILE, trailing KEY=VALUE arguments (e.g.
    `sigma=3 jpeg_quality=90`, values read as YAML) and the options, later over earlier; an
    unknown key or a value of the wrong type is an error naming it.
    """
    from pipeline.estimators import EstimatorError, build_estimator
    from pipeline.heatmaps import HeatmapJob, JobError
    from vireid.data.manifest import Manifest
    from vireid.data.scan import scan
    from vireid.data.scan_checks import ScanError
    from vireid.cache.reader import CacheError

    k, n = _parse_part(part)
    # the settings first: a wrong key or value stops before anything is touched
    config = _cache_config(config_path, overrides, dict(input_size=input_size, stride=stride, sigma=sigma,
                                                        image_format=image_format, shard_size=shard_size))
    if not root.is_dir():
        raise click.ClickException(f"--root {root}: not a directory")
    writable(out, "cache folder (--out)")
    ctx = click.get_current_context()
    if estimator == "lip" and weights is None and ctx.get_parameter_source("estimator") is ParameterSource.DEFAULT:
        raise click.ClickException(
            "no pose estimator given: the default, --estimator lip (GCCPM pre-trained on LIP, the paper's), "
            "needs --weights PATH (the public LIP checkpoint or `vireid-prep train-estimator`'s output); "
            "for another pass --estimator blazepose or --estimator keypoints")
    device = _heatmaps_device(device, k, n)
    try:
        # the estimator first: a missing or damaged --weights / --keypoints stops before the scan
        est = build_estimator(estimator, root=root, weights=weights, device=device, keypoints=keypoints_path,
                              batch_size=batch_size, size=estimator_size)
        reuse = out / "manifest.json"
        if manifest_path is not None:
            manifest = Manifest.load(manifest_path)
        elif reuse.is_file():
            manifest = Manifest.load(reuse)
            click.echo(f"using {reuse} (delete it to rescan {root})", err=True)
        else:
            manifest = scan(dataset, root, allow_partial=allow_partial, jobs=jobs, progress=progress,
                            skip_unreadable=on_error == "skip")
        if manifest.dataset != dataset:
            raise click.ClickException(f"the manifest is of dataset {manifest.dataset!r}, not {dataset!r}")
        job = HeatmapJob(manifest, root, out, est, config, jobs=jobs, on_error=on_error, part=(k, n),
                         progress=progress)
        if repair:
            from pipeline.cli_cache import report_repair
            from pipeline.repair import repair_cache

            return report_repair(out, repair_cache(job))
        result = job.run()
    except ScanError as exc:
        raise click.ClickException(str(exc)) from None
    except (EstimatorError, JobError, CacheError, ManifestError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{out}: {result.images} images in {result.shards_written} new shard(s) "
               f"({result.shards_skipped} already done), {result.images_per_second:.1f} img/s"
               + (f", {result.images_skipped} skipped (listed in {out / 'skipped.json'})" if result.images_skipped else ""))
    if not result.complete:
        click.echo(f"{out}: shards of other parts are still missing; index.json is written when all exist", err=True)
        return
    from vireid.cache.coverage import describe_coverage, joint_coverage
    from vireid.cache.reader import HeatmapCache

    click.echo(f"{out}: {describe_coverage(joint_coverage(HeatmapCache(out).metadata()))}")


from pipeline.cli_cache import register as _register_cache_commands  # noqa: E402
from pipeline.cli_train_estimator import register as _register_train_estimator  # noqa: E402

_register_cache_commands(cli)
_register_train_estimator(cli)


def main(argv: Optional[list] = None) -> None:
    """Console entry point; maps library errors to one-line messages."""
    try:
        cli.main(args=argv, prog_name="vireid-prep", standalone_mode=True)
    except (SpecError, ManifestError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
