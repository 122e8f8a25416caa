"""Initialising the network from weight files.

* :func:`load_imagenet_backbone`: a torchvision ResNet state dict (by default torchvision's
  ``IMAGENET1K_V1``, e.g. ``resnet50-0676ba61.pth``, found or downloaded with its hash checked
  by :mod:`vireid.model.pretrained`) into both modality-specific stems (layer0 + layer1), the
  modality-shared module (layer2) and the ReID branch (layer3 + layer4); ``fc`` is ignored.
* :func:`load_pose_branch_from_lip`: a GCCPM checkpoint's refinement stage into the pose
  branch's Refinement Module (Table IV: "PEB pre-trained on a pose estimation dataset").
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import torch
from torch import Tensor

from vireid.io import file_sha256
from vireid.pose.joints import NUM_JOINTS
from vireid.sealing import torch_load

from .network import PoseVIReIDNet
from .pretrained import checked, imagenet_weights

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

# Prefix of each torchvision ResNet key -> prefixes in PoseVIReIDNet.
_BACKBONE_MAP: Dict[str, List[str]] = {
    "conv1.": ["modality_specific.rgb.conv1.", "modality_specific.ir.conv1."],
    "bn1.": ["modality_specific.rgb.bn1.", "modality_specific.ir.bn1."],
    "layer1.": ["modality_specific.rgb.layer1.", "modality_specific.ir.layer1."],
    "layer2.": ["modality_shared.layer2."],
    "layer3.": ["reid_branch.layer3."],
    "layer4.": ["reid_branch.layer4."],
}


def _unwrap(obj: object, source: str) -> Dict[str, Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{source} does not hold a state dict (name -> tensor)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def _load_file(path: Path, what: str) -> Dict[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return _unwrap(torch_load(path, what, map_location="cpu", weights_only=True), str(path))


def load_imagenet_backbone(model: PoseVIReIDNet, path: Optional[PathLike] = None) -> Dict[str, Any]:
    """Copy ImageNet ResNet weights from a torchvision state dict into ``model``.

    Args:
        model: the network; its ``config.backbone`` must match the file's architecture.
        path: the ``.pth`` file. ``None``: torchvision's ``IMAGENET1K_V1`` weights of the
            backbone from the torch hub cache, downloaded there when missing
            (:func:`vireid.model.pretrained.imagenet_weights`).

    Returns:
        ``{'tensors': n, 'file': path, 'sha256': hex, 'url': torchvision's URL or None}``: the
        number of tensors written and the file they came from.

    Raises:
        FileNotFoundError: no file at ``path`` (or none in the hub cache and no download).
        ValueError: the file is not a state dict of this ResNet (missing keys or other shapes),
            or its content differs from the hash in its torch.hub-style name.
    """
    arch = model.config.backbone
    if path is None:
        weights = imagenet_weights(arch)
    else:
        if not Path(path).is_file():
            raise FileNotFoundError(f"ImageNet {arch} weights not found: {path}")
        weights = checked(Path(path), arch)
    path = weights.path
    src = _load_file(path, f"ImageNet {arch} weights")
    own = model.state_dict()
    updates: Dict[str, Tensor] = {}
    problems: List[str] = []
    for key, targets_prefixes in _BACKBONE_MAP.items():
        expected_keys = [k for k in own if k.startswith(targets_prefixes[0])]
        for tk in expected_keys:
            src_key = key + tk[len(targets_prefixes[0]):]
            if src_key not in src:
                problems.append(f"missing {src_key}")
                continue
            for prefix in targets_prefixes:
                dst = prefix + tk[len(targets_prefixes[0]):]
                if src[src_key].shape != own[dst].shape:
                    problems.append(f"{src_key}: {tuple(src[src_key].shape)} vs {tuple(own[dst].shape)}")
                else:
                    updates[dst] = src[src_key]
    used = {key + tk[len(prefixes[0]):] for key, prefixes in _BACKBONE_MAP.items()
            for tk in own if tk.startswith(prefixes[0])}
    problems += [f"unexpected {k}" for k in sorted(src) if k.split(".")[0] + "." in _BACKBONE_MAP and k not in used]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... ({len(problems)} in all)" if len(problems) > 5 else "")
        raise ValueError(f"{path} does not match a torchvision {arch}: {shown}")
    with torch.no_grad():
        for k, v in updates.items():
            own[k].copy_(v.to(own[k].dtype))
    logger.info("loaded %d ImageNet tensors from %s (sha256 %s)", len(updates), path, weights.sha256)
    return {"tensors": len(updates), "file": str(path), "sha256": weights.sha256, "url": weights.url}


def load_pose_branch_from_lip(
    model: PoseVIReIDNet,
    checkpoint: Union[PathLike, Mapping[str, Tensor]],
    stage_index: int = 0,
) -> Dict[str, Any]:
    """Initialise the Refinement Module from a GCCPM (LIP) checkpoint's refinement stage.

    The GCCPM state dict (``{'state_dict': ...}`` or the dict itself; float16 is converted)
    holds stages ``refinement_stages.<i>.*``; ``stage_index`` picks one (default 0, the first
    stage, whose input — coarse initial heatmaps — resembles what our freshly trained
    initial-heatmap conv produces; any index works, negative ones count from the end).

    Channel layout: a GCCPM stage takes [128 trunk features, 17 heatmaps] = 145 channels and
    predicts 17 maps (16 LIP joints, then background). Our Refinement Module takes
    [F_p2 (``deconv_channels``), initial heatmaps (``initial_heatmap_channels``)]; with the
    defaults (128 + 17) its input layout is GCCPM's, so every tensor loads unchanged except
    the last heatmap conv, whose output channels differ and which is adapted explicitly:

    * 16 per-joint maps: the 16 joint rows are kept, the background row dropped;
    * 1 merged map: the weights and biases of the 16 joint rows are averaged into one. The
      branch feeds the stage other features than GCCPM's trunk, so its joint rows do not
      output heatmaps at first; their sum would add 16 rows' errors (a pose loss of 1.43
      against the average's 0.25 at the first step, 96x32), and that first gradient step
      through the un-normalised heatmap head sent the pose loss to 81 at step 2 and to NaN
      by step 15 (``configs/sysu.yaml``, random backbone). The average starts on one row's
      scale and trains stably (docs/model.md, "Training from random weights"); the pose loss then
      fits the max over joints.

    Any other mismatch (e.g. a non-default ``initial_heatmap_channels`` or
    ``refine_channels``, which change the U-shaped block's widths) raises ``ValueError``
    listing the tensors, rather than loading part of the stage silently.

    Returns:
        ``{'loaded': [...], 'adapted': [...], 'sha256': hex or None}``: names (in the Refinement
        Module) copied as they are and adapted, and the checkpoint file's SHA-256 (None for an
        in-memory state dict).
    """
    if model.pose_branch is None:
        raise ValueError("the model has no Pose Estimation branch (use_pose_branch=False)")
    if isinstance(checkpoint, Mapping):
        src = _unwrap(checkpoint, "the given GCCPM state dict")
        source = "the given GCCPM state dict"
        digest = None
    else:
        src = _load_file(Path(checkpoint), "GCCPM checkpoint")
        source = str(checkpoint)
        digest = file_sha256(checkpoint)
    stages = sorted({int(k.split(".")[1]) for k in src if k.startswith("refinement_stages.")})
    if not stages:
        raise ValueError(f"{source} has no 'refinement_stages.*' tensors: not a GCCPM checkpoint")
    try:
        stage = stages[stage_index]
    except IndexError:
        raise ValueError(f"stage_index {stage_index} out of range: {source} has stages {stages}") from None
    prefix = f"refinement_stages.{stage}."
    stage_sd = {k[len(prefix):]: v for k, v in src.items() if k.startswith(prefix)}

    refinement = model.pose_branch.refinement
    own = refinement.state_dict()
    missing = sorted(set(own) - set(stage_sd))
    unexpected = sorted(set(stage_sd) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"{source} stage {stage} does not match the Refinement Module: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    # The heatmap output conv: the (last) tensors with NUM_JOINTS + 1 output rows in GCCPM.
    out_keys = _output_conv_keys(own)
    heat_c = model.pose_branch.heatmap_channels
    updates: Dict[str, Tensor] = {}
    loaded: List[str] = []
    adapted: List[str] = []
    problems: List[str] = []
    for k, dst in own.items():
        v = stage_sd[k].float()
        if v.shape == dst.shape:
            updates[k] = v
            loaded.append(k)
        elif k in out_keys and v.shape[0] == NUM_JOINTS + 1 and v.shape[1:] == dst.shape[1:]:
            joints = v[:NUM_JOINTS]  # drop the background row
            updates[k] = joints if heat_c == NUM_JOINTS else joints.mean(0, keepdim=True)
            adapted.append(k)
        else:
            problems.append(f"{k}: {tuple(v.shape)} vs {tuple(dst.shape)}")
    if problems:
        raise ValueError(
            f"{source} stage {stage} does not fit the Refinement Module (its input must be "
            f"128 features + 17 heatmaps, the defaults): {'; '.join(problems[:5])}"
        )
    with torch.no_grad():
        for k, v in updates.items():
            own[k].copy_(v.to(own[k].dtype))
    logger.info("Refinement Module initialised from %s stage %d: %d tensors, %d adapted (%s)%s",
                source, stage, len(loaded), len(adapted), adapted, f", sha256 {digest}" if digest else "")
    return {"loaded": loaded, "adapted": adapted, "sha256": digest}


def _output_conv_keys(state: Mapping[str, Tensor]) -> List[str]:
    """Names of the last conv's weight and bias (the heatmap output layer) of a stage."""
    convs = [k for k, v in state.items() if k.endswith(".weight") and v.dim() == 4]
    if not convs:
        return []
    last = convs[-1][: -len("weight")]
    return [k for k in state if k.startswith(last) and k[len(last):] in ("weight", "bias")]
