"""The LIP estimator's validation: keypoints from GCCPM's last stage on the val split, and
their PCKh@0.5 (:func:`vireid.pose.pckh.pckh`, LIP's definition), for ``vireid-prep train-estimator``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Tuple

import numpy as np

from vireid.pose.codec import HeatmapCodec, transform_points
from vireid.pose.joints import NUM_JOINTS
from vireid.pose.pckh import PCKh, pckh

if TYPE_CHECKING:   # torch is imported where it is used, so `vireid-prep --help` stays quick
    import torch
    from torch.utils.data import DataLoader

    from vireid.pose.gccpm import GCCPM


def predict_keypoints(model: GCCPM, loader: DataLoader, device: torch.device,
                      codec: HeatmapCodec) -> Tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, 16, 2) in original image pixels from the last stage's maps (decoded with
    ``codec``, the training targets'), and the annotations (N, 16, 3)."""
    import torch

    was_training = model.training
    model.eval()
    preds, gts = [], []
    try:
        with torch.no_grad():
            for batch in loader:
                maps = model(batch["image"].to(device))[-1][:, :NUM_JOINTS].float().cpu().numpy()
                for k in range(maps.shape[0]):
                    xy, _ = codec.decode(maps[k])
                    preds.append(transform_points(xy, batch["inverse"][k].numpy()))
                gts.append(batch["keypoints"].numpy())
    finally:
        model.train(was_training)
    if not preds:
        return np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS, 3))
    return np.stack(preds), np.concatenate(gts)


def evaluate_pckh(model: GCCPM, loader: DataLoader, device: torch.device, codec: HeatmapCodec) -> PCKh:
    """PCKh@0.5 of the estimator on ``loader``'s images (a :class:`pipeline.lip_data.LipValSet`)."""
    pred, gt = predict_keypoints(model, loader, device, codec)
    return pckh(gt, pred)
