"""The training configuration: a dataclass tree, YAML presets with inheritance, command-line overrides.

Layout (every key has the paper's default, Section IV-A)::

    dataset: sysu                 # must match the cache's manifest
    epochs: 100
    seed: 0
    device: auto                  # auto | cpu | cuda | cuda:N (under torchrun: cuda:LOCAL_RANK)
    deterministic: false          # torch.use_deterministic_algorithms
    log_every: 10                 # steps between progress-bar / logger updates
    tensorboard: false            # also log every record to RUN/tensorboard (needs vireid[tensorboard])
    val_every: 5                  # epochs between validations (only with data.holdout)
    grad_every: 50                # steps between per-loss gradient norms on the shared layers (0: off)
    progress: true                # tqdm progress bar
    model: {...}                  # ModelConfig's fields except input_size / num_classes,
                                  # plus pretrained, pose_init, pose_init_stage
    loss: {...}                   # LossConfig's fields
    data: {...}                   # DataConfig
    optim: {...}                  # OptimConfig
    speed: {...}                  # SpeedConfig: amp, channels_last, pin_memory, compile, activation_checkpointing
    ddp: {...}                    # DdpConfig: multi-process (torchrun) settings
    weights: {...}                # WeightsRecord: the weight files the run started from
                                  # (written by vireid-train, not a setting)

Batch size and learning rate under DDP (``ddp.batch``): with ``global`` (the default)
``data.num_ids`` x ``data.num_per_modality`` is the *global* batch (2 D K images, the
paper's 64), split between the ``torchrun`` ranks (each gets ``D K / world_size`` RGB and
as many IR images: whole identities when the world size divides ``D``), so the same preset
trains the same batches on 1 or N GPUs and ``optim.lr`` needs no change; a world size that
does not divide ``D K`` is refused. With ``per_rank`` every rank draws ``data.num_ids``
identities of its own: the global batch is ``world_size`` times larger and ``optim.lr`` is
what the user sets; the usual rule is to scale it linearly with the global batch,
``optim.lr = 0.01 * global images / 64``, with a few epochs of ``optim.warmup_epochs``
when the factor is large. The global batch and the lr in force are logged at start and
written at the top of the run's ``config.yaml``.

``model.input_size`` is ``data.input_size`` and ``model.num_classes`` is the number of
training identities counted from the data: neither is a key of its own, so they cannot
disagree. The sections are the library's own dataclasses: ``model:`` is
:class:`~vireid.model.config.ModelSettings` plus the initialisation keys
(:class:`ModelSection`), ``loss:`` is :class:`~vireid.losses.LossConfig`, ``speed:`` is
:class:`~vireid.engine.speed.SpeedConfig`.

A YAML file may start from others: ``inherit: sysu.yaml`` (or a list; ``defaults`` is a
synonym), paths relative to the file; later files and the file itself override what they
inherit. Command-line overrides ``key.sub=value`` come last; values are read as YAML
(``0.1``, ``true``, ``null``, ``[1, 2]``). Every layer is checked on its own, so an error
names the file (or override) at fault: unknown keys (with close matches), values of the
wrong type (:mod:`vireid.config_loader`, the loader ``vireid-prep heatmaps --config`` uses
too). :func:`save_config` writes the resolved tree (``config.yaml`` of a run), which
:func:`load_config` reads back unchanged.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from vireid import configs as presets
from vireid.config_loader import ConfigError, build_layers, load, plain, to_yaml
from vireid.cache.geometry import PAPER, Geometry
from vireid.inputs.sampler import SamplerConfig
from vireid.inputs.transforms import TransformConfig
from vireid.engine.speed import SpeedConfig
from vireid.io import PathLike, atomic_write_text
from vireid.losses import LossConfig
from vireid.model import ModelConfig, ModelSettings
from vireid.engine.config_checks import REQUIRED, check_device as _check_device, validate

__all__ = ["REQUIRED", "ConfigError", "DataConfig", "DdpConfig", "ModelSection", "OptimConfig", "SpeedConfig",
           "TrainConfig", "config_from_dict", "config_to_yaml", "load_config", "resolve_required", "save_config",
           "validate", "with_options", "WeightsRecord"]

#: ModelConfig fields that the data decides, with the reason shown when a file sets them.
DERIVED_MODEL_KEYS = {
    "input_size": "the model's input size is data.input_size",
    "num_classes": "the number of classes is counted from the training identities",
}


#: Top-level keys that moved into a section, with their new name.
MOVED_KEYS = {"amp": "speed.amp"}


#: Keys a configuration file may not set, with the reason (an error instead of close matches).
NOTES = {**{k: f"{k} is now {v} (see the speed section)" for k, v in MOVED_KEYS.items()},
         **{f"model.{k}": f"model.{k} is not a setting: {v}" for k, v in DERIVED_MODEL_KEYS.items()}}



# ----------------------------------------------------------------------------- sections
@dataclass
class ModelSection(ModelSettings):
    """``model:``: the network's :class:`~vireid.model.config.ModelSettings` (the data decides
    ``input_size`` and ``num_classes``) and how it starts: ``pretrained`` (ImageNet weights:
    ``null`` = random init, ``imagenet`` = torchvision's ``IMAGENET1K_V1`` of the backbone,
    hash-checked, from the torch hub cache or downloaded there, or a path to a torchvision
    state dict), ``pose_init`` (a GCCPM / LIP checkpoint whose
    refinement stage initialises the Refinement Module, ``null``, or :data:`REQUIRED`) and
    ``pose_init_stage`` (which of its refinement stages)."""

    pretrained: Optional[str] = None
    pose_init: Optional[str] = None
    pose_init_stage: int = 0


@dataclass
class WeightsRecord:
    """``weights:``: the weight files a run started from, as ``vireid-train`` resolved them (a
    record in ``config.yaml`` and the checkpoint, not a setting: training replaces what a file
    gives here; a resume keeps its checkpoint's). ``imagenet`` / ``imagenet_sha256`` /
    ``imagenet_url``: the file ``model.pretrained`` loaded, its SHA-256 and, for ``imagenet``,
    torchvision's URL of it; ``pose_init`` / ``pose_init_sha256``: the GCCPM (LIP) checkpoint of
    ``model.pose_init``. ``null`` where nothing was loaded."""

    imagenet: Optional[str] = None
    imagenet_sha256: Optional[str] = None
    imagenet_url: Optional[str] = None
    pose_init: Optional[str] = None
    pose_init_sha256: Optional[str] = None


@dataclass
class DataConfig:
    """Input, augmentation, batch composition and data selection.

    ``num_ids`` x ``num_per_modality`` is the paper's D x K (8 x 4: 32 RGB + 32 IR images
    per batch). ``splits``: SYSU-MM01 splits trained on (the literature's train + val);
    RegDB uses its trial tables instead. ``holdout``: ``null`` (train on all training
    identities, keep the last epoch: the paper's protocol), ``val`` (SYSU: the val split's
    identities) or ``fraction`` (``holdout_fraction`` of the training identities) held out
    for validation, which then selects ``best.pt``. ``trial``: the RegDB trial (1-10).
    ``damaged_rows``: a cache row that fails its checksum ``stop``s the run naming it (the
    default), or with ``skip`` every training and held-out row is checked before training
    (one read of each) and the damaged ones are left out, each logged (warning and a
    ``damaged`` record in ``log.jsonl``); a row damaged later still stops the run.
    ``input_size`` / ``stride``: the cache's :class:`~vireid.cache.geometry.Geometry`, checked
    against its ``cache.json`` when training starts. Random erasing: ``erase_p``,
    ``erase_area`` (fraction of the image), ``erase_fill`` (per-channel value in the
    normalised image), ``erase_targets`` (``none``, ``same`` or ``independent``: the pose
    targets' cells zeroed under the image's box or under a box of their own),
    ``erase_aspect_sampling`` (``uniform`` or ``log``) and ``erase_attempts`` (tries for a
    box that fits): :class:`~vireid.inputs.transforms.TransformConfig`.
    ``require_estimator``: the pose estimator the cache must have been made by (its
    ``cache.json`` record), e.g. ``lip`` in the paper presets (GCCPM pre-trained on LIP);
    ``null`` accepts any.
    """

    input_size: Tuple[int, int] = PAPER.input_size
    stride: int = PAPER.stride
    pad: int = 10
    flip_p: float = 0.5
    erase_p: float = 0.5
    erase_area: Tuple[float, float] = TransformConfig.erase_area
    erase_fill: Tuple[float, float, float] = TransformConfig.erase_fill
    erase_targets: str = TransformConfig.erase_targets
    erase_aspect_sampling: str = TransformConfig.erase_aspect_sampling
    erase_attempts: int = TransformConfig.erase_attempts
    num_ids: int = 8
    num_per_modality: int = 4
    batches_per_epoch: Optional[int] = None
    workers: int = 4
    splits: List[str] = field(default_factory=lambda: ["train", "val"])
    holdout: Optional[str] = None
    holdout_fraction: float = 0.1
    trial: int = 1
    val_batch_size: int = 64
    damaged_rows: str = "stop"
    require_estimator: Optional[str] = None

    @property
    def geometry(self) -> Geometry:
        """``input_size`` and ``stride``: what the cache must have been built at (one check,
        :meth:`Geometry.check`, when training starts)."""
        return Geometry(self.input_size, self.stride)

    def transform_config(self) -> TransformConfig:
        """The augmentation's :class:`TransformConfig`, built once per section (when the
        configuration is checked on loading) and the same object after: configurations are
        never changed in place (``dataclasses.replace`` makes a new section)."""
        return self._built("transform", lambda: TransformConfig(
            self.geometry, pad=self.pad, flip_p=self.flip_p, erase_p=self.erase_p,
            erase_area=tuple(self.erase_area), erase_fill=tuple(self.erase_fill), erase_targets=self.erase_targets,
            erase_aspect_sampling=self.erase_aspect_sampling, erase_attempts=self.erase_attempts))

    def sampler_config(self) -> SamplerConfig:
        """The batch composition's :class:`SamplerConfig`, built once per section (as
        :meth:`transform_config`)."""
        return self._built("sampler", lambda: SamplerConfig(num_ids=self.num_ids,
                                                            num_per_modality=self.num_per_modality,
                                                            batches_per_epoch=self.batches_per_epoch))

    def _built(self, name: str, build: Any) -> Any:
        cache = self.__dict__.setdefault("_derived", {})     # not a field: asdict, ==, replace ignore it
        if name not in cache:
            cache[name] = build()
        return cache[name]


@dataclass
class OptimConfig:
    """SGD and its learning-rate schedule (paper: lr 0.01, x0.5 every 20 epochs, wd 5e-4, momentum 0.9).

    ``schedule: step``: ``lr * gamma ** (epoch // step_size)``. ``schedule: milestones``:
    ``lr * factors[i]`` where ``i`` is the number of ``milestones`` reached (the release:
    factors 1, .75, .5, .25, .125, .1, .05 at epochs 12, 30, 50, 75, 125, 180), so
    ``len(factors) == len(milestones) + 1``. ``warmup_epochs``: linear warm-up from
    ``warmup_start`` x to 1 x the scheduled lr over the first epochs. ``stem_lr_factor``:
    lr multiplier of the modality-specific stems (release 0.1).
    """

    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    stem_lr_factor: float = 1.0
    schedule: str = "step"
    step_size: int = 20
    gamma: float = 0.5
    milestones: List[int] = field(default_factory=list)
    factors: List[float] = field(default_factory=list)
    warmup_epochs: int = 0
    warmup_start: float = 0.1


@dataclass
class DdpConfig:
    """Multi-process training under ``torchrun`` (DistributedDataParallel).

    Nothing here matters in a single process. The process group is initialised from
    torchrun's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (and ``MASTER_ADDR`` / ``MASTER_PORT``);
    ``backend: auto`` is ``nccl`` on CUDA and ``gloo`` on a CPU. ``sync_bn``: BatchNorm
    statistics over the global batch (:class:`torch.nn.SyncBatchNorm` on CUDA, an all-reduce
    implementation on a CPU) instead of each rank's share; ``gather_hctri``: the
    hetero-center triplet loss over the embeddings of the global batch (its centers and
    hardest negatives span every rank's identities). With both on (the defaults) an N-process
    run computes the single-process losses and gradients of the same global batch, up to
    floating-point summation order; with them off each rank sees only ``D / N`` identities.
    ``timeout_minutes``: how long a collective waits for the other ranks before the run
    fails with an error (a rank that died or hangs) instead of waiting forever.
    ``batch``: what ``data.num_ids`` counts, ``global`` (the identities of the global batch,
    split between the ranks: the paper's batch on any number of GPUs dividing ``D x K``) or
    ``per_rank`` (each rank's identities: the global batch grows with the world size; see
    the module docstring for the lr).
    """

    backend: str = "auto"
    sync_bn: bool = True
    gather_hctri: bool = True
    timeout_minutes: float = 30.0
    batch: str = "global"


@dataclass
class TrainConfig:
    """The whole run configuration (see the module docstring)."""

    dataset: str = "sysu"
    epochs: int = 100
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False
    log_every: int = 10
    tensorboard: bool = False
    val_every: int = 5
    grad_every: int = 50
    progress: bool = True
    model: ModelSection = field(default_factory=ModelSection)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    ddp: DdpConfig = field(default_factory=DdpConfig)
    weights: WeightsRecord = field(default_factory=WeightsRecord)

    # ------------------------------------------------------------------ derived configs
    def model_config(self, num_classes: int) -> ModelConfig:
        """The network's :class:`ModelConfig` for ``num_classes`` training identities."""
        return ModelConfig(**self.model.settings(), input_size=self.data.transform_config().geometry.input_size,
                           num_classes=int(num_classes))

    def loss_config(self) -> LossConfig:
        return self.loss

    def to_dict(self) -> Dict[str, Any]:
        return plain(dataclasses.asdict(self))


# ----------------------------------------------------------------------------- loading
def load_config(path: Optional[PathLike] = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """The configuration of ``path`` (with what it inherits) and ``overrides`` (``key.sub=value``).

    ``path`` is a file, or the name of a packaged preset (``sysu``: :func:`vireid.configs.find_config`).
    Raises :class:`ConfigError` naming the file or override and the key at fault.
    """
    return load(TrainConfig, None if path is None else presets.find_config(path), overrides, NOTES, validate)


def config_from_dict(values: Dict[str, Any], source: str = "a checkpoint's config") -> TrainConfig:
    """Rebuild a :class:`TrainConfig` from :meth:`TrainConfig.to_dict` output (e.g. a checkpoint's)."""
    return build_layers(TrainConfig, [(source, dict(values))], NOTES, validate)


def resolve_required(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with every ``???`` key resolved, or :class:`ConfigError` naming the key to set.

    ``model.pose_init: ???`` (``configs/sysu.yaml``, ``configs/regdb.yaml``): the paper's
    Pose Estimation branch starts from a LIP-trained pose estimator (Section III-E, Table IV),
    so training refuses to start without one. A model without the PEB (Table IV's baseline
    row) has nothing to initialise: the key becomes ``null``.
    """
    if cfg.model.pose_init != REQUIRED:
        return cfg
    if not cfg.model.use_pose_branch:
        return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, pose_init=None))
    raise ConfigError(
        "model.pose_init is required by this preset (???): the paper's Pose Estimation branch is "
        "pre-trained on LIP. Give a GCCPM LIP checkpoint with `--set model.pose_init=PATH` (the public "
        "5-stage checkpoint, or one from `vireid-prep train-estimator`), or `--set model.pose_init=null` "
        "to train the branch from random weights")


def with_options(cfg: TrainConfig, device: Optional[str] = None, progress: Optional[bool] = None) -> TrainConfig:
    """``cfg`` with the command-line options that set one of its keys applied to the dataclass
    (``--device``, ``--progress/--no-progress``; ``None``: not given, the configuration's
    value stays). A device that is not one is a :class:`ConfigError` naming the option."""
    changes: Dict[str, Any] = {}
    if device is not None:
        try:
            _check_device(device)
        except ValueError as exc:
            raise ConfigError(f"--device {device}: {exc}") from None
        changes["device"] = device
    if progress is not None:
        changes["progress"] = bool(progress)
    return dataclasses.replace(cfg, **changes) if changes else cfg


def config_to_yaml(cfg: TrainConfig) -> str:
    return to_yaml(cfg)


def save_config(cfg: TrainConfig, path: PathLike, note: str = "") -> None:
    """Write the resolved configuration atomically (readable by :func:`load_config`); ``note``
    (e.g. the run's global batch and lr) goes into the header as comment lines."""
    header = "# resolved vireid-train configuration\n" + "".join(f"# {line}\n" for line in note.splitlines())
    atomic_write_text(path, header + config_to_yaml(cfg))
