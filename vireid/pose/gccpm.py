"""GCCPM: Global Context for Convolutional Pose Machines (Osokin, the paper's ref. [34]).

The LIP-pretrained single-person pose estimator whose heatmaps supervise the joint
model, and whose refinement stage *is* the paper's Refinement Module (Section III-B,
eqs. 2-7: a U-shaped block, three Refine Blocks and two convolutions predicting the
heatmaps). :class:`RefinementStage` is written once here and used by both
:class:`GCCPM` and :class:`vireid.model.PoseEstimationBranch`.

Architecture (module and parameter names follow the public checkpoint exactly, so its
``{'state_dict': ...}`` file loads strictly): a MobileNet-style backbone (``model``,
stride 8 with a dilated block), a CPM block (``cpm``: 512 -> 256 -> 128), an initial
stage and ``num_refinement_stages`` refinement stages, each predicting 17 maps (the 16
LIP joints in :data:`vireid.pose.joints.JOINT_NAMES` order, then the background) at
stride 8 (:data:`vireid.pose.codec.STRIDE`). Input: BGR, ``(pixel - 128) / 256``, fitted
and normalised by :func:`vireid.pose.codec.prepare_input`.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger(__name__)

NUM_HEATMAPS = 17   # 16 LIP joints + background


def conv(in_ch: int, out_ch: int, kernel_size: int = 3, padding: int = 1, bn: bool = True, dilation: int = 1,
         stride: int = 1, relu: bool = True, bias: bool = True) -> nn.Sequential:
    """Conv2d [+ BatchNorm] [+ ReLU], as an ``nn.Sequential`` (indices 0, 1, 2 in state dicts)."""
    layers: List[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation, bias=bias)]
    if bn:
        layers.append(nn.BatchNorm2d(out_ch))
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def conv_dw(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1, padding: int = 1) -> nn.Sequential:
    """MobileNet's depthwise 3x3 + pointwise 1x1, each with BatchNorm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, stride, padding, dilation=dilation, groups=in_ch, bias=False),
        nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True),
        nn.Conv2d(in_ch, out_ch, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
    )


class InitialStage(nn.Module):
    """Three 3x3 convs, then 1x1 -> 512 -> ``num_heatmaps``."""

    def __init__(self, num_channels: int, num_heatmaps: int):
        super().__init__()
        self.trunk = nn.Sequential(*(conv(num_channels, num_channels) for _ in range(3)))
        self.heatmaps = nn.Sequential(
            conv(num_channels, 512, kernel_size=1, padding=0, bn=False),
            conv(512, num_heatmaps, kernel_size=1, padding=0, bn=False, relu=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.heatmaps(self.trunk(x))


class RefinementStageBlock(nn.Module):
    """The paper's Refine Block (one of the three inside RM_F, eq. 3).

    ``initial``: 1x1 conv (+ReLU) to ``out_channels``; ``trunk``: 3x3 conv + BN + ReLU,
    then a dilation-2 3x3 conv + BN + ReLU; output ``initial + trunk(initial)`` (residual).
    Spatial size is kept: [N, in, H, W] -> [N, out, H, W].
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.initial = conv(in_channels, out_channels, kernel_size=1, padding=0, bn=False)
        self.trunk = nn.Sequential(conv(out_channels, out_channels),
                                   conv(out_channels, out_channels, dilation=2, padding=2))

    def forward(self, x: Tensor) -> Tensor:
        initial = self.initial(x)
        return initial + self.trunk(initial)


class UShapedContextBlock(nn.Module):
    """The paper's U-Shaped Block (the first part of RM_F, eq. 3; GCCPM's global context).

    Two stride-2 encoders (C -> 2C at H/2, then H/4), each of two 3x3 conv + BN + ReLU;
    two decoders that upsample bilinearly (``align_corners=False``) and concatenate the
    skip connection: ``decoder2`` on [e1, up(e2)] (4C -> 2C), ``decoder1`` on [x, up(d2)]
    (3C -> 2C -> C). Output has the input's channels and size: [N, C, H, W].
    """

    def __init__(self, in_channels: int):
        super().__init__()
        c2 = in_channels * 2
        self.encoder1 = nn.Sequential(conv(in_channels, c2, stride=2), conv(c2, c2))
        self.encoder2 = nn.Sequential(conv(c2, c2, stride=2), conv(c2, c2))
        self.decoder2 = nn.Sequential(conv(c2 + c2, c2), conv(c2, c2))
        self.decoder1 = nn.Sequential(conv(in_channels * 3, c2), conv(c2, in_channels))

    def forward(self, x: Tensor) -> Tensor:
        e1 = self.encoder1(x)                                    # [N, 2C, H/2, W/2]
        e2 = self.encoder2(e1)                                   # [N, 2C, H/4, W/4]
        up2 = F.interpolate(e2, size=e1.shape[2:], mode="bilinear", align_corners=False)
        d2 = self.decoder2(torch.cat([e1, up2], 1))              # [N, 2C, H/2, W/2]
        up1 = F.interpolate(d2, size=x.shape[2:], mode="bilinear", align_corners=False)
        return self.decoder1(torch.cat([x, up1], 1))             # [N, C, H, W]


class RefinementStage(nn.Module):
    """GCCPM's refinement stage = the paper's Refinement Module (Section III-B).

    * ``trunk`` = RM_F of eq. 3: :class:`UShapedContextBlock` (on ``in_channels``), then
      three :class:`RefinementStageBlock` (-> ``out_channels``); its output is the refined
      keypoint features F_R, which the joint model passes on to Conv3 (eq. 5), the sum with
      F_p1 and Conv Block6 (eq. 6) and the sigmoid masks (eq. 7).
    * ``heatmaps`` = RM_H of eq. 4: two 1x1 convolutions (``out -> out`` + ReLU, then
      ``out -> num_heatmaps``, no activation) predicting the heatmaps H-hat from F_R.

    In GCCPM the input is [CPM features (128), previous stage's maps (17)] = 145 channels;
    in the joint model it is [F_p2 of eq. 2, initial heatmaps].
    """

    def __init__(self, in_channels: int, out_channels: int, num_heatmaps: int):
        super().__init__()
        self.trunk = nn.Sequential(
            UShapedContextBlock(in_channels),
            RefinementStageBlock(in_channels, out_channels),
            RefinementStageBlock(out_channels, out_channels),
            RefinementStageBlock(out_channels, out_channels),
        )
        self.heatmaps = nn.Sequential(
            conv(out_channels, out_channels, kernel_size=1, padding=0, bn=False),
            conv(out_channels, num_heatmaps, kernel_size=1, padding=0, bn=False, relu=False),
        )

    def forward_with_features(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``x`` [N, in, H, W] -> (F_R [N, out, H, W], heatmaps [N, num_heatmaps, H, W])."""
        features = self.trunk(x)
        return features, self.heatmaps(features)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` [N, in, H, W] -> heatmaps [N, num_heatmaps, H, W]."""
        return self.forward_with_features(x)[1]


class GCCPM(nn.Module):
    """The whole estimator; ``forward`` returns every stage's maps (initial stage first)."""

    def __init__(self, num_refinement_stages: int = 5, num_channels: int = 128, num_heatmaps: int = NUM_HEATMAPS):
        super().__init__()
        self.model = nn.Sequential(
            conv(3, 32, stride=2, bias=False),
            conv_dw(32, 64),
            conv_dw(64, 128, stride=2),
            conv_dw(128, 128),
            conv_dw(128, 256, stride=2),
            conv_dw(256, 256),
            conv_dw(256, 512),
            conv_dw(512, 512, dilation=2, padding=2),
            conv_dw(512, 512),
            conv_dw(512, 512),
            conv_dw(512, 512),
            conv_dw(512, 512),
        )
        self.cpm = nn.Sequential(conv(512, 256), conv(256, num_channels))
        self.initial_stage = InitialStage(num_channels, num_heatmaps)
        self.refinement_stages = nn.ModuleList(
            RefinementStage(num_channels + num_heatmaps, num_channels, num_heatmaps)
            for _ in range(num_refinement_stages))

    def forward(self, x: Tensor) -> List[Tensor]:
        features = self.cpm(self.model(x))                       # [N, 128, H/8, W/8]
        stages = [self.initial_stage(features)]                  # [N, 17, H/8, W/8] each
        for stage in self.refinement_stages:
            stages.append(stage(torch.cat([features, stages[-1]], dim=1)))
        return stages


# ---------------------------------------------------------------- checkpoints
class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the network; the message lists every difference."""


_STAGE_KEY = re.compile(r"^refinement_stages\.(\d+)\.")


def extract_state_dict(obj: Any, source: str = "<checkpoint>") -> Dict[str, Tensor]:
    """``{'state_dict': sd}`` (the public format) or a plain state dict; strips ``module.``."""
    sd = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(sd, Mapping) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise CheckpointMismatchError(f"{source}: not a GCCPM checkpoint ({{'state_dict': {{name: tensor}}}})")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}


def num_channels_in(state_dict: Mapping[str, Tensor]) -> int:
    """Width of a GCCPM state dict's features (the CPM's output channels: GCCPM's 128, or a
    narrower estimator's, e.g. one made to fit a narrow Refinement Module); 128 when absent."""
    w = state_dict.get("cpm.1.0.weight")
    return int(w.shape[0]) if isinstance(w, Tensor) and w.dim() == 4 else 128


def num_stages_in(state_dict: Mapping[str, Tensor]) -> int:
    """Number of refinement stages a GCCPM state dict holds (highest ``refinement_stages.i`` + 1)."""
    found = {int(m.group(1)) for k in state_dict if (m := _STAGE_KEY.match(k))}
    return max(found) + 1 if found else 0


def load_state_strict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """Load ``state_dict`` into ``model`` (as float32) or raise listing missing keys,
    unexpected keys and shape mismatches: never a silent partial load."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state_dict[k].shape)}, network {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state_dict)) if tuple(own[k].shape) != tuple(state_dict[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:20])}"
                         f"{' ...' if len(unexpected) > 20 else ''}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {'; '.join(shapes[:20])}")
        raise CheckpointMismatchError(f"{source} does not fit the network:\n  " + "\n  ".join(parts))
    model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state_dict.items()},
                          strict=True)


def read_gccpm_checkpoint(path: "str | Path", num_refinement_stages: Optional[int] = None,
                          map_location: str = "cpu") -> Tuple[GCCPM, Dict[str, Any]]:
    """:func:`load_gccpm_checkpoint`, and the file's other top-level entries (``{}`` for a
    bare state dict): ``vireid-prep train-estimator`` records ``input_size``, the square
    side the weights were trained at."""
    from vireid.sealing import DamagedFileError, torch_load

    path = Path(path)
    if not path.is_file():
        raise CheckpointMismatchError(f"{path}: checkpoint not found")
    try:
        obj = torch_load(path, "PyTorch checkpoint", map_location=map_location, weights_only=True)
    except DamagedFileError as exc:
        raise CheckpointMismatchError(str(exc)) from None
    sd = extract_state_dict(obj, str(path))
    stages = num_stages_in(sd) if num_refinement_stages is None else num_refinement_stages
    model = GCCPM(num_refinement_stages=stages, num_channels=num_channels_in(sd))
    load_state_strict(model, sd, str(path))
    meta = {k: v for k, v in obj.items() if k != "state_dict"} if "state_dict" in obj else {}
    return model.eval(), meta


def load_gccpm_checkpoint(path: "str | Path", num_refinement_stages: Optional[int] = None,
                          map_location: str = "cpu") -> GCCPM:
    """Build :class:`GCCPM` and load a checkpoint file strictly (float16 weights become float32).

    The number of refinement stages is read from the keys unless given, the feature width
    from the CPM's weights (:func:`num_channels_in`).
    """
    return read_gccpm_checkpoint(path, num_refinement_stages, map_location)[0]
