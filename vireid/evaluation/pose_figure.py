"""A picture of the Pose Estimation branch at work: for test identities, an RGB and an IR
crop, each with the cached target skeleton and heatmaps beside the branch's predicted ones
(issue 15: the paper's premise is that pose is shared across modalities, so the branch
should find the joints in infrared as it does in colour).
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import cv2
import numpy as np
import torch

from vireid.inputs.dataset import eval_transform
from vireid.cache.reader import HeatmapCache
from vireid.inputs.transforms import EvalTransform
from vireid.evaluation.pose_accuracy import scores_joints
from vireid.model import PoseVIReIDNet
from vireid.pose.draw import draw_skeleton, overlay_heatmaps
from vireid.pose.codec import HeatmapCodec

SCALE = 2                      # crops are small (128x64): drawn twice as large
COLUMNS = ("RGB target", "RGB predicted", "IR target", "IR predicted")  # cell titles: "id P: <column>"


def pairs_per_identity(cache: HeatmapCache, indices: Sequence[int], limit: int = 4) -> List[Tuple[int, int, int]]:
    """``(pid, first RGB index, first IR index)`` for the first ``limit`` identities of
    ``indices`` (in identity order) that have images in both modalities."""
    meta = cache.metadata()
    first: dict = {}
    for i in indices:
        key = (int(meta["pid"][i]), int(meta["modality"][i]))
        first.setdefault(key, int(i))
    pids = sorted({p for p, _ in first})
    return [(p, first[(p, 0)], first[(p, 1)]) for p in pids if (p, 0) in first and (p, 1) in first][:limit]


@torch.no_grad()
def _predict(model: PoseVIReIDNet, transform: EvalTransform, entry: Dict[str, Any],
             device: torch.device) -> np.ndarray:
    """The branch's heatmaps ``[C, H/4, W/4]`` for one cache entry (``HeatmapCache.get``)."""
    sample = transform(entry)
    images = sample["image"][None].to(device)                                     # [1, 3, H, W]
    modality = torch.tensor([entry["modality"]], device=device)
    was_training = model.training
    model.eval()
    try:
        maps = model.predict_heatmaps(images, modality)[0].float().cpu().numpy()  # [C, H/4, W/4]
    finally:
        model.train(was_training)
    return maps


def _cell(image: np.ndarray, maps: np.ndarray, codec: HeatmapCodec, confidence: np.ndarray) -> np.ndarray:
    """Crop with the skeleton decoded from ``maps`` (joints with ``confidence`` > 0) above the
    crop with the maps overlaid, both ``SCALE`` times larger."""
    big = cv2.resize(image, (image.shape[1] * SCALE, image.shape[0] * SCALE), interpolation=cv2.INTER_LINEAR)
    points, _ = codec.decode(maps)
    skeleton = draw_skeleton(big, points * SCALE + (SCALE - 1) / 2.0, confidence)
    return np.concatenate([skeleton, overlay_heatmaps(big, maps)], axis=0)


def _label(cell: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((18, cell.shape[1], 3), 255, np.uint8)
    scale = 0.4
    while scale > 0.25 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > cell.shape[1] - 6:
        scale -= 0.05                                    # long titles shrink to fit the cell
    cv2.putText(bar, text, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, cell], axis=0)


def pose_figure(model: PoseVIReIDNet, cache: HeatmapCache, pairs: Sequence[Tuple[int, int, int]],
                device: torch.device) -> np.ndarray:
    """One row per ``(pid, rgb index, ir index)``: RGB target | RGB predicted | IR target | IR
    predicted, each a skeleton over the crop above the heatmaps over the crop. The target is
    the cache's maps (joints with confidence > 0); the prediction is the branch's maps, every
    joint drawn at its map's peak. Returns a BGR uint8 image."""
    if not scores_joints(model):
        raise ValueError("the pose picture needs a Pose Estimation branch that predicts one map per joint "
                         "(model.heatmap_channels: 16)")
    if not pairs:
        raise ValueError("no identity has images in both modalities")
    codec = cache.codec
    transform = eval_transform(cache)
    rows = []
    for pid, rgb, ir in pairs:
        cells = []
        for index in (rgb, ir):
            entry = cache.get(index)
            pred = _predict(model, transform, entry, device)
            cells.append(_cell(entry["image"], entry["heatmaps"], codec, entry["confidence"]))
            cells.append(_cell(entry["image"], np.clip(pred, 0.0, 1.0), codec, np.ones(len(pred))))
        row = np.concatenate([_label(c, f"id {pid}: {name}") for c, name in zip(cells, COLUMNS)], axis=1)
        rows.append(np.concatenate([row, np.full((6, row.shape[1], 3), 255, np.uint8)], axis=0))
    return np.concatenate(rows, axis=0)
