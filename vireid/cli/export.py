"""``vireid-export``: the inference network of a checkpoint as TorchScript or ONNX.

    vireid-export --checkpoint RUN/best.pt --format torchscript --out model.ts
    vireid-export --checkpoint RUN/best.pt --format onnx --out model.onnx     # pip install 'vireid[onnx]'

Inputs, outputs and preprocessing: :mod:`vireid.inference.export`.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Optional

import click

from vireid._version import __version__
from vireid.cli.options import CONTEXT

HELP = """Export the inference network of a checkpoint: images [B, 3, H, W] float32 (RGB, ImageNet-
normalised, H x W the training input size) and modality [B] int64 (0 RGB, 1 IR) -> f_id [B, D]
and f_all [B, D'] (the eval-mode features, unit stripes concatenated). The batch size is free.

\b
After writing OUT the export is run on random images of another batch size and compared with
eager PyTorch (max |difference| must stay under 1e-4; --no-check skips this). ONNX needs the
onnx extra (pip install 'vireid[onnx]'), its check onnxruntime.
"""


@click.command(help=HELP, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="vireid-export")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A vireid-train checkpoint (RUN/best.pt or RUN/last.pt).")
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx"]), default="torchscript", show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="Output file.")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Compare the exported network with eager PyTorch on random inputs.")
def cli(checkpoint: Path, fmt: str, out: Path, check: bool) -> None:
    from vireid.model.checkpoint import CheckpointError, build_model_from_checkpoint
    from vireid.inference.export import ExportError, check_export, export_model
    from vireid.io import WriteError, ensure_writable, file_sha256

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        ensure_writable(out.parent)
        model, _ = build_model_from_checkpoint(checkpoint)
        export_model(model.eval(), out, fmt, checkpoint_sha256=file_sha256(checkpoint))
        unchecked = check and fmt == "onnx" and importlib.util.find_spec("onnxruntime") is None
        worst = check_export(model, out, fmt) if check and not unchecked else None
    except (CheckpointError, ExportError, WriteError) as exc:
        raise click.ClickException(str(exc)) from None
    h, w = model.config.input_size
    dims = model.feature_dim
    click.echo(f"{out}: {fmt}, {out.stat().st_size / 2 ** 20:.1f} MiB; images [B, 3, {h}, {w}] float32 + "
               f"modality [B] int64 -> f_id [B, {dims['f_id']}], f_all [B, {dims['f_all']}]")
    if unchecked:
        click.echo("not checked: onnxruntime is not installed (pip install 'vireid[onnx]')")
    if worst is not None:
        click.echo(f"checked against eager PyTorch on 3 random images (RGB and IR): max |difference| "
                   f"{worst:.2e} (tolerance 1e-4)")


def main(argv: Optional[list] = None) -> None:
    cli.main(args=argv, prog_name="vireid-export", standalone_mode=True)


if __name__ == "__main__":
    main()
