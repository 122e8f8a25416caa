"""Configuration of the joint pose / ReID network (paper Section III, Fig. 2)."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Dict, Mapping, Optional, Tuple

from vireid.pose.codec import PAPER_INPUT_SIZE
from vireid.pose.joints import NUM_JOINTS

from .init import HEATMAP_HEAD_INITS, INIT_SCHEMES, REFINEMENT_INITS

#: Backbone names accepted by :class:`ModelConfig` (torchvision ResNets).
BACKBONES: Tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")

#: Table IV rows: which parts each ablation preset switches on.
ABLATIONS: Dict[str, Dict[str, bool]] = {
    # Modality-specific + modality-shared modules + ReID branch, L_id + L_hctri.
    "baseline": {"use_pose_branch": False, "use_pose_loss": False, "use_hfc": False},
    # + Pose Estimation branch (mask and pose PCB heads), no pose supervision.
    "peb": {"use_pose_branch": True, "use_pose_loss": False, "use_hfc": False},
    # + pose estimation loss (eq. 16).
    "peb_pose": {"use_pose_branch": True, "use_pose_loss": True, "use_hfc": False},
    # + Hierarchical Feature Constraint (eqs. 14-15): the full model.
    "full": {"use_pose_branch": True, "use_pose_loss": True, "use_hfc": True},
}


def _down(size: int, times: int) -> int:
    """Spatial size after ``times`` stride-2 layers of the ResNet / pose-branch kind (ceil)."""
    for _ in range(times):
        size = math.ceil(size / 2)
    return size


@dataclass
class ModelSettings:
    """The hyper-parameters of :class:`vireid.model.PoseVIReIDNet` that a configuration sets
    (``model:`` of ``vireid-train``'s); defaults are the paper's. :class:`ModelConfig` adds
    what the data decides (``num_classes``, ``input_size``).

    Attributes:
        backbone: torchvision ResNet depth (paper: ResNet-50). Channel numbers are read
            from the built backbone, never hard-coded.
        num_stripes: P, the number of PCB stripes per branch (paper: 6).
        stripe_dim: dimension of each stripe embedding (paper: 512).
        leaky_slope: negative slope of the stripe heads' LeakyReLU (release: 0.1).
        last_stride: stride of layer4 (release: 1, giving 18x9 maps at 288x144).
        use_pose_branch: build the Pose Estimation branch (PEB), its mask (eq. 9) and its
            PCB heads. Off = Table IV "Baseline".
        use_pose_loss: supervise the PEB's heatmaps with eq. 16 (the train output carries
            the predicted heatmaps only when on). Needs ``use_pose_branch``. This switch
            owns no layer: the initial-heatmap conv feeds the Refinement Module's features
            either way, so Table IV's "PEB without L_pose" keeps the same architecture and
            only the Refinement Module's final heatmap convs are left without gradient.
        use_hfc: build the teacher PCB_T of the Hierarchical Feature Constraint (eqs. 14-15).
            Needs ``use_pose_branch`` (the teacher sees both branches' features).
        heatmap_channels: 1 = one merged heatmap (paper eq. 16 and release, default) or
            ``NUM_JOINTS`` (16) = one map per LIP joint.
        pose_channels: output channels of Conv1 (F_p1) and Conv3 (release: 256).
        deconv_channels: output channels of DConv2 (F_p2; release: 128, GCCPM's trunk width).
        initial_heatmap_channels: maps of the 3x3 conv that predicts the initial heatmaps
            fed with F_p2 into the Refinement Module. Default 17 = GCCPM's 16 joints +
            background, so the Refinement Module's input (128 + 17 = 145 channels) has
            exactly the layout of a GCCPM refinement stage and LIP weights load unchanged.
        refine_channels: trunk width of the Refinement Module (F_R; GCCPM: 128).
        block6_mid_channels: output channels of Conv Block6's 3x3 stride-2 conv
            (``None`` = the modality-shared module's output channels: 512 for ResNet-50,
            as in the release).
        teacher_dim: embedding dimension of PCB_T (release: 1024).
        init: initialisation of every layer outside the backbone-derived modules:
            ``'xavier'`` (Section IV-A, default) or ``'default'`` (vireid's earlier Kaiming /
            N(0, 0.001) / PyTorch defaults); see :mod:`vireid.model.init`.
        heatmap_head_init: the Refinement Module's last conv (the one that outputs Ĥ):
            ``'scheme'`` (as ``init``, default) or ``'small'`` (N(0, 0.001) weights, zero
            bias: mmpose's heatmap heads), so that a branch trained from scratch starts by
            predicting near-zero maps. Measured (docs/model.md, "Which reading of eq. 16"): with 16
            joint maps trained from scratch, the head's hidden ReLU layer died within 15
            steps under either scheme, and the pose gradient became exactly 0.
        refinement_init: the Refinement Module's start when no LIP checkpoint fills it
            (``model.pose_init: null``): ``'gccpm'`` (default: PyTorch's per-layer default,
            as GCCPM trains a stage from scratch) or ``'scheme'`` (as ``init``). With
            ``init: xavier`` and ``'scheme'`` the un-normalised heatmap head starts over SGD's
            stability limit at lr 0.01 and diverges (:func:`vireid.model.init.gccpm_init`).
    """

    backbone: str = "resnet50"
    num_stripes: int = 6
    stripe_dim: int = 512
    leaky_slope: float = 0.1
    last_stride: int = 1
    use_pose_branch: bool = True
    use_pose_loss: bool = True
    use_hfc: bool = True
    heatmap_channels: int = 1
    pose_channels: int = 256
    deconv_channels: int = 128
    initial_heatmap_channels: int = NUM_JOINTS + 1
    refine_channels: int = 128
    block6_mid_channels: Optional[int] = None
    teacher_dim: int = 1024
    init: str = "xavier"
    heatmap_head_init: str = "scheme"
    refinement_init: str = "gccpm"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {self.last_stride}")
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"init must be one of {INIT_SCHEMES}, got {self.init!r}")
        if self.heatmap_head_init not in HEATMAP_HEAD_INITS:
            raise ValueError(f"heatmap_head_init must be one of {HEATMAP_HEAD_INITS}, got {self.heatmap_head_init!r}")
        if self.refinement_init not in REFINEMENT_INITS:
            raise ValueError(f"refinement_init must be one of {REFINEMENT_INITS}, got {self.refinement_init!r}")
        if self.heatmap_channels not in (1, NUM_JOINTS):
            raise ValueError(
                f"heatmap_channels must be 1 (merged) or {NUM_JOINTS} (one per LIP joint), "
                f"got {self.heatmap_channels}"
            )
        for name in ("num_stripes", "stripe_dim", "pose_channels", "deconv_channels",
                     "initial_heatmap_channels", "refine_channels", "teacher_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.block6_mid_channels is not None and self.block6_mid_channels < 1:
            raise ValueError(f"block6_mid_channels must be >= 1 or None, got {self.block6_mid_channels}")
        if self.use_pose_loss and not self.use_pose_branch:
            raise ValueError("use_pose_loss=True needs use_pose_branch=True (the loss supervises the PEB)")
        if self.use_hfc and not self.use_pose_branch:
            raise ValueError(
                "use_hfc=True needs use_pose_branch=True: PCB_T sees the concatenation of both "
                "branches' features (Section III-D)"
            )

    def settings(self) -> Dict[str, object]:
        """This object's :class:`ModelSettings` fields by name (what a subclass adds left out)."""
        return {f.name: getattr(self, f.name) for f in fields(ModelSettings)}


def check_input_size(settings: ModelSettings, input_size: Tuple[int, ...]) -> None:
    """What ``input_size`` (H, W) must allow the network of ``settings``: the ReID feature maps
    need a row per stripe. :class:`ModelConfig` checks it when built; ``vireid-train``'s
    configuration when it is loaded, before the data decides ``num_classes`` (one build)."""
    if len(input_size) != 2 or min(input_size) < 1:
        raise ValueError(f"input_size must be (H, W) with positive sizes, got {input_size}")
    rows = _down(input_size[0], 4 if settings.last_stride == 1 else 5)
    if rows < settings.num_stripes:
        raise ValueError(
            f"input height {input_size[0]} gives ReID feature maps of {rows} rows, fewer "
            f"than num_stripes={settings.num_stripes}; use a taller input_size"
        )


@dataclass
class ModelConfig(ModelSettings):
    """Everything that builds a :class:`vireid.model.PoseVIReIDNet`: the :class:`ModelSettings`
    and what the data decides.

    Attributes:
        num_classes: number of training identities (SYSU-MM01: 395, RegDB: 206).
        input_size: ``(H, W)`` of the input images (paper: 288x144; ``vireid-train``: the
            cache's :class:`~vireid.cache.geometry.Geometry`); used to check at construction
            that the stripes and heatmaps are feasible and to report the predicted heatmap size.
    """

    num_classes: int = 395
    input_size: Tuple[int, int] = PAPER_INPUT_SIZE

    def __post_init__(self) -> None:
        self.input_size = tuple(int(s) for s in self.input_size)  # type: ignore[assignment]
        super().__post_init__()
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        check_input_size(self, self.input_size)

    def reid_feature_size(self, input_hw: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
        """``(H, W)`` of the ReID branch's feature maps (input / 16 with last stride 1)."""
        h, w = input_hw or self.input_size
        n = 4 if self.last_stride == 1 else 5
        return _down(h, n), _down(w, n)

    def heatmap_size(self, input_hw: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
        """``(H, W)`` of the predicted heatmaps: input / 4 (72x36 at 288x144).

        The PEB starts from layer2 (input / 8, each stride-2 layer rounding up) and DConv2
        doubles the resolution.
        """
        h, w = input_hw or self.input_size
        return 2 * _down(h, 3), 2 * _down(w, 3)

    @classmethod
    def ablation(cls, name: str, **overrides: object) -> "ModelConfig":
        """Preset for one row of Table IV: ``'baseline' | 'peb' | 'peb_pose' | 'full'``."""
        if name not in ABLATIONS:
            raise ValueError(f"unknown ablation {name!r}; choose one of {sorted(ABLATIONS)}")
        return cls(**{**ABLATIONS[name], **overrides})  # type: ignore[arg-type]

    def replace(self, **changes: object) -> "ModelConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def model_config_from(data: Mapping[str, Any]) -> ModelConfig:
    """The :class:`ModelConfig` a checkpoint recorded (its ``model_config`` dict; keys that
    are not fields are dropped)."""
    known = {f.name for f in fields(ModelConfig)}
    cfg = {k: v for k, v in data["model_config"].items() if k in known}
    if "input_size" in cfg:
        cfg["input_size"] = tuple(cfg["input_size"])
    return ModelConfig(**cfg)
