"""``vireid-prep train-estimator``: the command line of :mod:`pipeline.train_estimator`
(registered on the ``vireid-prep`` group by :func:`register`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from pipeline.lip_data import AugmentConfig, LipDataError
from pipeline.train_estimator import EstimatorTrainConfig, TrainEstimatorError, log_path, train_estimator
from vireid.io import WriteError


def register(cli: Any) -> None:
    """Add the ``train-estimator`` command to the click group ``cli``."""
    import click

    @cli.command("train-estimator")
    @click.option("--dataset", default="lip", show_default=True, type=click.Choice(["lip"]),
                  help="Training data layout (only LIP, the estimator's data set).")
    @click.option("--root", required=True, type=click.Path(path_type=Path),
                  help="LIP root: TrainVal_images/ and TrainVal_pose_annotations/ (or `synth --layout lip` output).")
    @click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False),
                  help="Weights to write ({'state_dict': ...}); also OUT-stem.log.json and OUT-stem.state.pt.")
    @click.option("--epochs", default=100, show_default=True, type=click.IntRange(1, None))
    @click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, None))
    @click.option("--lr", default=4e-5, show_default=True, type=click.FloatRange(0, None, min_open=True),
                  help="Base learning rate of Adam (refinement stages get 4x, their biases 8x).")
    @click.option("--input-size", default=256, show_default=True, type=click.IntRange(32, None),
                  help="Square input side, a multiple of 8.")
    @click.option("--sigma", type=click.FloatRange(0, None, min_open=True), default=None,
                  help="Gaussian sigma of the targets in input pixels [default: GCCPM's 7, i.e. 0.875 of "
                       "the stride-8 cell, at any input size].")
    @click.option("--schedule", type=click.Choice(["plateau", "cosine"]), default="plateau", show_default=True,
                  help="plateau: GCCPM's (lr x0.1 when val PCKh stalls for 5 epochs); cosine: 5% warm-up, "
                       "then a cosine decay to 0 over the run, stepped every batch (short runs, the demo).")
    @click.option("--augment", type=click.Choice(["gccpm", "light", "none"]), default="gccpm", show_default=True,
                  help="gccpm: masking, rotation 40 deg, scale 0.8-1.5, channel order, flip; light: no "
                       "masking, rotation 15 deg, scale 0.9-1.2 (short runs, the demo); none.")
    @click.option("--num-refinement-stages", default=5, show_default=True, type=click.IntRange(0, None),
                  help="5 as the public LIP checkpoint; the demo uses 0 (the initial stage only).")
    @click.option("--occluded", type=click.Choice(["ignore", "train"]), default="ignore", show_default=True,
                  help="Loss weight of an occluded joint's map: 0 (ignore) or 1 (train, as GCCPM).")
    @click.option("--missing", type=click.Choice(["ignore", "absent"]), default="ignore", show_default=True,
                  help="Unannotated joint: weight 0 (ignore) or an all-zero target of weight 1 (absent, as GCCPM).")
    @click.option("--val-images", default=1000, show_default=True, type=click.IntRange(0, None),
                  help="Val images for PCKh after each epoch (GCCPM: the first 1000); 0 = all.")
    @click.option("--init", "init", type=click.Path(path_type=Path, dir_okay=False),
                  help="GCCPM checkpoint to start from (strict: same number of refinement stages).")
    @click.option("--resume", is_flag=True, help="Continue from OUT-stem.state.pt if present.")
    @click.option("--device", default="auto", show_default=True,
                  help="auto (CUDA when there is one), cpu, cuda or cuda:N.")
    @click.option("--seed", default=0, show_default=True, type=click.IntRange(0, None), help="Seed of initialisation, order and augmentation.")
    @click.option("--workers", default=2, show_default=True, type=click.IntRange(0, None),
                  help="DataLoader worker processes (0: load in the main process).")
    @click.option("--allow-partial", is_flag=True, help="Accept a partial LIP copy (see `manifest`).")
    @click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
    def train_estimator_cmd(dataset: str, root: Path, out: Path, epochs: int, batch_size: int, lr: float,
                            input_size: int, sigma: Optional[float], schedule: str, augment: str,
                            num_refinement_stages: int, occluded: str, missing: str,
                            val_images: int, init: Optional[Path], resume: bool, device: str, seed: int,
                            workers: int, allow_partial: bool, progress: bool) -> None:
        """Train the LIP pose estimator (GCCPM) and write its weights in the public checkpoint layout.

        \b
        GCCPM's recipe: 256x256 input, rotation/scale/flip/masking augmentation, stride-8
        Gaussian targets, every stage supervised, Adam 4e-5 with a plateau schedule, val PCKh@0.5.
        Demo on synthetic LIP:
          vireid-prep synth --layout lip --out demo/LIP --ids 40
          vireid-prep train-estimator --root demo/LIP --out demo/lip.pt --epochs 3 --input-size 96 \\
              --num-refinement-stages 0 --lr 5e-3 --schedule cosine --augment light
        """
        if input_size % 8:
            raise click.BadParameter(f"{input_size} is not a multiple of 8", param_hint="--input-size")
        try:
            cfg = EstimatorTrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, input_size=input_size,
                              num_refinement_stages=num_refinement_stages, occluded=occluded, missing=missing,
                              val_images=val_images, seed=seed, sigma=sigma, schedule=schedule,
                              augment=AugmentConfig.preset(augment))
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        try:
            result = train_estimator(root, out, cfg, init=init, resume=resume, device=device, workers=workers,
                                     allow_partial=allow_partial, progress=progress)
        except (TrainEstimatorError, LipDataError, WriteError) as exc:
            raise click.ClickException(str(exc)) from None
        last = result.epochs[-1] if result.epochs else {}
        before = f"{result.initial_pckh.average:.2f}" if result.initial_pckh else "n/a"
        after = f"{result.final_pckh.average:.2f}" if result.final_pckh else "n/a"
        click.echo(f"{out}: {len(result.epochs)} epoch(s), last loss {last.get('loss', float('nan')):.5f}, "
                   f"val PCKh@0.5 {before} -> {after} (log: {log_path(out)})")
