"""``vireid-prep train-estimator``: the command line of :mod:`pipeline.train_estimator`
(registered on the ``vireid-prep`` group by :func:`register`).

The training settings are :class:`pipeline.train_estimator.EstimatorTrainConfig`, read as the other
commands read theirs (:mod:`vireid.config_loader`): its defaults, then ``--config FILE.yaml``
(with the files it names under ``inherit:``), then ``--set KEY=VALUE`` overrides, then the
options that name a key (``--epochs``, ``--lr``, ...), each later layer over the earlier
ones. The options have no defaults of their own: the dataclass is the one source (shown in
``--help``).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from pipeline.lip_data import AugmentConfig, LipDataError
from pipeline.train_estimator import EstimatorTrainConfig, TrainEstimatorError, log_path, train_estimator
from vireid.io import WriteError

#: the dataclass's defaults, shown in the options' help
DEFAULTS = EstimatorTrainConfig()
#: ``--augment`` presets (:meth:`AugmentConfig.preset`): the ``augment`` section of each
AUGMENT_PRESETS = ("gccpm", "light", "none")


def _shown(key: str) -> str:
    """`` [default: VALUE]`` of ``EstimatorTrainConfig``'s ``key``, for an option's help."""
    return f"  [default: {getattr(DEFAULTS, key)}]"


def estimator_config(config_path: Optional[Path], sets: Sequence[str], options: Dict[str, Any]) -> EstimatorTrainConfig:
    """``train-estimator``'s :class:`EstimatorTrainConfig`: its defaults, ``config_path`` (YAML, with what
    it inherits), the ``--set`` overrides and the ``options`` given (``None``: not given; ``augment``
    a preset's name), later over earlier; :class:`~vireid.config_loader.ConfigError` names the
    file, override or option and the key at fault."""
    from vireid.config_loader import build_layers, override_layer, plain, read_yaml

    layers = read_yaml(config_path) if config_path is not None else []
    layers += [override_layer(text, EstimatorTrainConfig) for text in sets]
    for key, value in options.items():
        if value is None:
            continue
        if key == "augment":
            layers.append((f"--augment {value}", {"augment": plain(dataclasses.asdict(AugmentConfig.preset(value)))}))
        else:
            layers.append((f"--{key.replace('_', '-')} {value}", {key: value}))
    return build_layers(EstimatorTrainConfig, layers)


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
    @click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
                  help="YAML file of training settings (the keys of pipeline.train_estimator.EstimatorTrainConfig: epochs, "
                       "batch_size, lr, input_size, sigma, schedule, augment: {...}, ...; `inherit: other.yaml` as "
                       "in vireid-train presets). --set and the options below override it.")
    @click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                  help="Override a setting (repeatable), e.g. --set lr=1e-3 --set augment.mask_prob=0; values "
                       "read as YAML. The options below override it.")
    @click.option("--epochs", type=click.IntRange(1, None), default=None, help="Training epochs." + _shown("epochs"))
    @click.option("--batch-size", type=click.IntRange(1, None), default=None,
                  help="Images per batch." + _shown("batch_size"))
    @click.option("--lr", type=click.FloatRange(0, None, min_open=True), default=None,
                  help="Base learning rate of Adam (refinement stages get 4x, their biases 8x)." + _shown("lr"))
    @click.option("--input-size", type=click.IntRange(32, None), default=None,
                  help="Square input side, a multiple of 8." + _shown("input_size"))
    @click.option("--sigma", type=click.FloatRange(0, None, min_open=True), default=None,
                  help="Gaussian sigma of the targets in input pixels [default: GCCPM's 7, i.e. 0.875 of "
                       "the stride-8 cell, at any input size].")
    @click.option("--schedule", type=click.Choice(["plateau", "cosine"]), default=None,
                  help="plateau: GCCPM's (lr x0.1 when val PCKh stalls for 5 epochs); cosine: 5% warm-up, "
                       "then a cosine decay to 0 over the run, stepped every batch (short runs, the demo)."
                       + _shown("schedule"))
    @click.option("--augment", type=click.Choice(AUGMENT_PRESETS), default=None,
                  help="The augment section as a preset: gccpm (the default section): masking, rotation 40 deg, "
                       "scale 0.8-1.5, channel order, flip; light: no masking, rotation 15 deg, scale 0.9-1.2 "
                       "(short runs, the demo); none.")
    @click.option("--num-refinement-stages", type=click.IntRange(0, None), default=None,
                  help="5 as the public LIP checkpoint; the demo uses 0 (the initial stage only)."
                       + _shown("num_refinement_stages"))
    @click.option("--occluded", type=click.Choice(["ignore", "train"]), default=None,
                  help="Loss weight of an occluded joint's map: 0 (ignore) or 1 (train, as GCCPM)."
                       + _shown("occluded"))
    @click.option("--missing", type=click.Choice(["ignore", "absent"]), default=None,
                  help="Unannotated joint: weight 0 (ignore) or an all-zero target of weight 1 (absent, as GCCPM)."
                       + _shown("missing"))
    @click.option("--val-images", type=click.IntRange(0, None), default=None,
                  help="Val images for PCKh after each epoch (GCCPM: the first 1000); 0 = all." + _shown("val_images"))
    @click.option("--init", "init", type=click.Path(path_type=Path, dir_okay=False),
                  help="GCCPM checkpoint to start from (strict: same number of refinement stages).")
    @click.option("--resume", is_flag=True, help="Continue from OUT-stem.state.pt if present.")
    @click.option("--device", default="auto", show_default=True,
                  help="auto (CUDA when there is one), cpu, cuda or cuda:N.")
    @click.option("--seed", type=click.IntRange(0, None), default=None,
                  help="Seed of initialisation, order and augmentation." + _shown("seed"))
    @click.option("--workers", default=2, show_default=True, type=click.IntRange(0, None),
                  help="DataLoader worker processes (0: load in the main process).")
    @click.option("--allow-partial", is_flag=True, help="Accept a partial LIP copy (see `manifest`).")
    @click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
    def train_estimator_cmd(dataset: str, root: Path, out: Path, config_path: Optional[Path], sets: Sequence[str],
                            epochs: Optional[int], batch_size: Optional[int], lr: Optional[float],
                            input_size: Optional[int], sigma: Optional[float], schedule: Optional[str],
                            augment: Optional[str], num_refinement_stages: Optional[int], occluded: Optional[str],
                            missing: Optional[str], val_images: Optional[int], init: Optional[Path], resume: bool,
                            device: str, seed: Optional[int], workers: int, allow_partial: bool,
                            progress: bool) -> None:
        """Train the LIP pose estimator (GCCPM) and write its weights in the public checkpoint layout.

        \b
        GCCPM's recipe: 256x256 input, rotation/scale/flip/masking augmentation, stride-8
        Gaussian targets, every stage supervised, Adam 4e-5 with a plateau schedule, val PCKh@0.5.
        The settings come from --config FILE.yaml, --set KEY=VALUE and the options, later over
        earlier. Demo on synthetic LIP:
          vireid-prep synth --layout lip --out demo/LIP --ids 40
          vireid-prep train-estimator --root demo/LIP --out demo/lip.pt --epochs 3 --input-size 96 \\
              --num-refinement-stages 0 --lr 5e-3 --schedule cosine --augment light
        """
        from vireid.config_loader import ConfigError

        try:
            cfg = estimator_config(config_path, sets, dict(
                epochs=epochs, batch_size=batch_size, lr=lr, input_size=input_size, sigma=sigma, schedule=schedule,
                augment=augment, num_refinement_stages=num_refinement_stages, occluded=occluded, missing=missing,
                val_images=val_images, seed=seed))
        except ConfigError as exc:
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
