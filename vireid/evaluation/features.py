"""Test features: one batch through the model in eval mode (with the flip average), and the
features of cache entries over an ``EvalTransform``."""
from __future__ import annotations

import logging
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from vireid.inputs.dataset import CacheDataset, eval_transform
from vireid.cache.reader import HeatmapCache
from vireid.model import PoseVIReIDNet

log = logging.getLogger(__name__)


@torch.no_grad()
def forward_features(model: PoseVIReIDNet, images: Tensor, modality: Tensor, flip: bool = False) -> Dict[str, Tensor]:
    """Eval-mode features of one normalised batch ``[B, 3, H, W]`` (``modality`` 0 RGB, 1 IR);
    with ``flip`` the features of the images and of their mirror images are averaged (a
    common test-time augmentation; the paper's numbers are without it)."""
    feats = model(images, modality)
    if flip:
        mirrored = model(torch.flip(images, dims=[3]), modality)
        feats = {k: (v + mirrored[k]) / 2 for k, v in feats.items()}
    return feats


@torch.no_grad()
def extract_features(model: PoseVIReIDNet, cache: HeatmapCache, indices: Sequence[int], batch_size: int = 64,
                     device: str = "cpu", flip: bool = False, workers: int = 0,
                     progress: bool = False, channels_last: bool = False,
                     meta: Optional[Mapping[str, np.ndarray]] = None) -> Dict[str, np.ndarray]:
    """Features ``{'f_id', 'f_all'[, 'f_p']}`` -> (len(indices), D) float32, rows in ``indices`` order
    (``flip``: see :func:`forward_features`). ``channels_last`` runs the network in NHWC
    memory format (1.6x the images/s of a ResNet-50 on a CPU's oneDNN, what a GPU's tensor
    cores want; features equal to float32 rounding) and gives the model back contiguous.
    ``meta``: the cache's metadata if the caller has it (gathered otherwise)."""
    from tqdm.auto import tqdm

    # every test image needs a label; identities are only reported, never learned here
    ds = CacheDataset(cache, indices=list(indices), transform=eval_transform(cache), label_map=None, meta=meta)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)
    model.eval().to(device)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    chunks: Dict[str, list] = {}
    try:
        for batch in tqdm(loader, desc="features", unit="batch", disable=not progress):
            images = batch["image"].to(device).contiguous(memory_format=layout)   # [B, 3, H, W]
            modality = batch["modality"].to(device)
            feats = forward_features(model, images, modality, flip)
            for k, v in feats.items():
                chunks.setdefault(k, []).append(v.float().cpu().numpy())
    finally:
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
    return {k: np.concatenate(v, axis=0) for k, v in chunks.items()}
