"""The Pose Estimation branch's own accuracy: PCKh@0.5 of its heatmaps against the cached
targets, separately for RGB and IR images (issue 15; the paper's premise is that pose is a
modality-shared cue, so the branch should find joints in both modalities alike).

The targets are the heatmap cache's maps (made by the LIP estimator, or from exact
keypoints on synthetic data); a target joint counts when its confidence is above
``min_confidence`` (the pose loss's threshold). See :func:`vireid.pose.pckh.heatmap_pckh`.
Only a branch that predicts one map per joint (``model.heatmap_channels: 16``) has
joints to score; with one merged map (eq. 16 as the release reads it) there is none.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from vireid.inputs.dataset import CacheDataset, eval_transform
from vireid.cache.reader import HeatmapCache
from vireid.data.modality import Modality
from vireid.model import PoseVIReIDNet
from vireid.pose.joints import NUM_JOINTS
from vireid.pose.pckh import PCKh, heatmap_pckh

logger = logging.getLogger(__name__)

MODALITIES = ("rgb", "ir")


def scores_joints(model: PoseVIReIDNet) -> bool:
    """Whether the model's pose branch predicts one heatmap per LIP joint."""
    return model.pose_branch is not None and model.config.heatmap_channels == NUM_JOINTS


@torch.no_grad()
def branch_pckh(model: PoseVIReIDNet, cache: HeatmapCache, indices: Sequence[int], device: torch.device,
                batch_size: int = 64, min_confidence: float = 0.0,
                meta: Optional[Mapping[str, np.ndarray]] = None) -> Dict[str, PCKh]:
    """``{'rgb': PCKh, 'ir': PCKh}`` of the branch's heatmaps on the cache entries ``indices``
    (a modality without images is left out); ``{}`` when the model does not predict joint maps.
    ``meta``: the cache's metadata if the caller has it."""
    if not scores_joints(model) or not len(indices):
        return {}
    codec = cache.codec
    ds = CacheDataset(cache, indices=list(indices), transform=eval_transform(cache), label_map=None, meta=meta)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)
    was_training = model.training
    model.eval()
    parts: Dict[str, Dict[int, List[np.ndarray]]] = {k: {int(m): [] for m in Modality}
                                                     for k in ("pred", "target", "conf")}
    try:
        for batch in loader:
            images = batch["image"].to(device)                                      # [B, 3, H, W]
            modality = batch["modality"].to(device)                                 # [B]
            pred = model.predict_heatmaps(images, modality).float().cpu().numpy()  # [B, 16, H/4, W/4]
            mods = batch["modality"].numpy()
            for m in Modality:
                sel = mods == m
                if sel.any():
                    parts["pred"][m].append(pred[sel])
                    parts["target"][m].append(batch["heatmaps"].numpy()[sel])
                    parts["conf"][m].append(batch["joint_weights"].numpy()[sel])
    finally:
        model.train(was_training)
    out: Dict[str, PCKh] = {}
    for m, name in enumerate(MODALITIES):
        if parts["pred"][m]:
            out[name] = heatmap_pckh(np.concatenate(parts["pred"][m]), np.concatenate(parts["target"][m]),
                                     np.concatenate(parts["conf"][m]), codec, min_confidence)
    return out
