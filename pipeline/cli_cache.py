"""``vireid-prep`` commands on a finished cache: ``verify``, ``checksum``, ``compare`` and ``show``
(registered on the group by :func:`register`), and the report of ``heatmaps --repair``."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import click

from pipeline.cli_util import MAX_LISTED, one_line_write_errors, writable

if TYPE_CHECKING:
    from pipeline.repair import RepairResult


def report_repair(out: Path, result: RepairResult) -> None:
    """What ``heatmaps --repair`` did and what verify says afterwards; exit 1 if problems remain."""
    click.echo(f"{out}: repaired: {result.summary()}")
    after = result.after
    if after.problems:
        click.echo(f"{out}: {len(after.problems)} problem(s) remain:", err=True)
        for p in after.problems[:MAX_LISTED]:
            click.echo(f"  {p}", err=True)
        sys.exit(1)
    click.echo(f"{out}: OK")


def register(cli: Any) -> None:
    """Add ``checksum``, ``verify``, ``compare`` and ``show`` to the click group ``cli``."""

    @cli.command("checksum")
    @click.argument("cache", type=click.Path(path_type=Path, file_okay=False))
    @one_line_write_errors
    def checksum_cmd(cache: Path) -> None:
        """Add row checksums to a cache written before they existed, from the rows as stored.

        No heatmap is recomputed and no dataset root or estimator is needed; each shard is
        rewritten atomically. Run `verify` first: the checksums seal the rows as they are now.
        """
        from pipeline.heatmaps import JobError
        from pipeline.repair import add_checksums
        from vireid.cache.reader import CacheError

        if not cache.is_dir():
            raise click.ClickException(f"{cache}: no such cache folder")
        writable(cache, "cache folder")
        try:
            added, had = add_checksums(cache)
        except (CacheError, JobError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{cache}: row checksums added to {len(added)} shard(s) ({len(had)} had them); no heatmap "
                   f"recomputed")


    @cli.command("verify")
    @click.argument("cache", type=click.Path(path_type=Path, file_okay=False))
    @click.option("--manifest", "manifest_path", type=click.Path(path_type=Path, dir_okay=False),
                  help="Check against this manifest (default: CACHE/manifest.json).")
    def verify_cmd(cache: Path, manifest_path: Optional[Path]) -> None:
        """Check a cache: every row against its checksums and the manifest, shards readable, counts and
        index match the manifest, no NaN, attributes consistent.

        Exits with status 1 and the list of problems if any: a damaged row is named by shard, row
        and source image; `vireid-prep heatmaps --repair` recomputes just those.
        """
        from pipeline.verify import inspect_cache

        if not cache.is_dir():
            raise click.ClickException(f"{cache}: no such cache folder")
        report = inspect_cache(cache, manifest_path)
        if report.problems:
            click.echo(f"{cache}: {len(report.problems)} problem(s):", err=True)
            for p in report.problems[:MAX_LISTED]:
                click.echo(f"  {p}", err=True)
            if len(report.problems) > MAX_LISTED:
                click.echo(f"  ... and {len(report.problems) - MAX_LISTED} more", err=True)
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
        if report.problems:
            sys.exit(1)
        click.echo(f"{cache}: crops resized with {report.resize_filter}")
        click.echo(f"{cache}: OK" + (" (rows not checksummed: see the note)" if report.unchecked_shards else ""))


    @cli.command("compare")
    @click.argument("cache", type=click.Path(path_type=Path, file_okay=False))
    @click.option("--reference", required=True, type=click.Path(path_type=Path, file_okay=False),
                  help="Cache of the same images whose joints count as right (e.g. made with --estimator keypoints "
                       "on synthetic data, or by a stronger estimator).")
    @click.option("--min-confidence", default=0.0, show_default=True, type=click.FloatRange(0, 1),
                  help="Reference joints at or below this confidence are left out.")
    def compare_cmd(cache: Path, reference: Path, min_confidence: float) -> None:
        """PCKh@0.5 of CACHE's cached joints against a reference cache, for RGB and IR separately.

        \b
        How good is the pose supervision a cache holds? E.g. the demo's LIP estimator against the
        synthetic people's exact keypoints:
          vireid-prep compare demo_out/cache/sysu-lip --reference demo_out/cache/sysu-keypoints
        Images are matched by source path; a joint CACHE did not report counts as wrong.
        """
        from vireid.cache.reader import CacheError, HeatmapCache
        from pipeline.compare import cache_agreement, describe_agreement

        for folder in (cache, reference):
            if not folder.is_dir():
                raise click.ClickException(f"{folder}: no such cache folder")
        try:
            result, matched = cache_agreement(HeatmapCache(cache), HeatmapCache(reference), min_confidence)
        except CacheError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{cache} vs {reference} ({matched} images in both): {describe_agreement(result)}")

    @cli.command("show")
    @click.argument("cache", type=click.Path(path_type=Path, file_okay=False))
    @click.option("--ids", default=None, help="Comma-separated identities to draw (default: the first few).")
    @click.option("--per-id", default=4, show_default=True, type=click.IntRange(1, None), help="Images per identity.")
    @click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False), help="Folder for the PNGs.")
    @one_line_write_errors
    def show_cmd(cache: Path, ids: Optional[str], per_id: int, out: Path) -> None:
        """Write PNGs of cached crops with their heatmaps and skeleton overlaid, for a person to look at.

        One PNG per identity: each column is one image (crop with skeleton above, heatmaps below).
        """
        import cv2
        import numpy as np

        from vireid.cache.reader import CacheError, HeatmapCache
        from vireid.io import atomic_path
        from vireid.pose.draw import draw_skeleton, overlay_heatmaps

        writable(out)
        try:
            c = HeatmapCache(cache)
            entry_pids = c.metadata()["pid"]          # identities only: no heatmap or image read
        except CacheError as exc:
            raise click.ClickException(str(exc)) from None
        pids = sorted({int(p) for p in entry_pids})
        if ids:
            try:
                wanted = [int(v) for v in ids.split(",")]
            except ValueError:
                raise click.BadParameter(f"--ids {ids!r}: expected comma-separated integers") from None
            unknown = [p for p in wanted if p not in pids]
            if unknown:
                raise click.ClickException(f"identities {unknown} are not in {cache}")
        else:
            wanted = pids[:4]
        out.mkdir(parents=True, exist_ok=True)
        for pid in wanted:
            cols = []
            for i in np.flatnonzero(entry_pids == pid)[:per_id]:
                full = c.get(int(i))
                top = draw_skeleton(full["image"], full["keypoints"], full["confidence"])
                bottom = overlay_heatmaps(full["image"], full["heatmaps"])
                cols.append(np.concatenate([top, bottom], axis=0))
            sheet = np.concatenate(cols, axis=1)
            target = out / f"id{pid:04d}.png"
            with atomic_path(target, suffix=".png") as tmp:
                if not cv2.imwrite(str(tmp), sheet):
                    raise click.ClickException(f"cannot write {target}")
            click.echo(str(target))
