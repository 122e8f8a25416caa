"""The augmentation steps that run on the training device for a whole batch (normalisation
with random erasing, and the heatmaps' pad-and-crop shift): bit for bit what the CPU steps
of :mod:`vireid.inputs.augment` give, so :class:`~vireid.inputs.transforms.TrainTransform`
can leave them to the device (``device_normalise=True``, ``heatmaps='stored'``).
"""
from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np
import torch

from vireid.cache.format import HEATMAP_SCALE, dequantize_heatmaps
from vireid.inputs.augment import TransformConfig, _scale_bias


@functools.lru_cache(maxsize=32)
def _device_constants(mean: Tuple[float, ...], std: Tuple[float, ...], fill: Tuple[float, ...],
                      device: torch.device) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(scale, bias, fill)`` as ``[1, 3, 1, 1]`` float32 and the 256 dequantised heatmap values,
    on ``device``: copied there once per device and setting, not in every step (a small
    copy from the host makes the host wait for the device)."""
    config = TransformConfig(mean=tuple(mean), std=tuple(std), erase_fill=tuple(fill))
    scale, bias = (torch.from_numpy(v).to(device).view(1, 3, 1, 1) for v in _scale_bias(config))
    fill_t = torch.tensor(fill, dtype=torch.float32).to(device).view(1, 3, 1, 1)
    levels = torch.from_numpy(dequantize_heatmaps(np.arange(256, dtype=np.uint8))).to(device)
    return scale, bias, fill_t, levels


def _constants(config: TransformConfig, device: torch.device
               ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return _device_constants(tuple(config.mean), tuple(config.std), tuple(config.erase_fill), torch.device(device))


def normalise_batch(images: torch.Tensor, erase: Optional[torch.Tensor], config: TransformConfig) -> torch.Tensor:
    """Steps 4-5 of :class:`~vireid.inputs.transforms.TrainTransform` for a batch, on the batch's device.

    Args:
        images: [B, 3, H, W] uint8 RGB (``TrainTransform(device_normalise=True)``).
        erase: [B, 4] integer boxes (y, x, h, w), h == 0 for none; or None. Copied to the
            device without waiting (``non_blocking``); the constants are the device's own.
        config: the transform's configuration (mean, std, erase_fill).

    Returns:
        [B, 3, H, W] float32: ``image * 1/(255 std) - mean/std`` (the CPU path's two
        float32 operations in the same order), erased boxes set to ``erase_fill``.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [B, 3, H, W] uint8, got {tuple(images.shape)} {images.dtype}")
    scale, bias, fill, _ = _constants(config, images.device)
    out = images.to(torch.float32).mul_(scale).add_(bias)
    if erase is not None:
        b, _, h, w = images.shape
        if erase.shape != (b, 4):
            raise ValueError(f"erase must be [{b}, 4], got {tuple(erase.shape)}")
        erase = erase.to(images.device, non_blocking=True).long()
        y0, x0 = erase[:, 0].view(b, 1, 1), erase[:, 1].view(b, 1, 1)
        y1, x1 = y0 + erase[:, 2].view(b, 1, 1), x0 + erase[:, 3].view(b, 1, 1)
        ys = torch.arange(h, device=images.device).view(1, h, 1)
        xs = torch.arange(w, device=images.device).view(1, 1, w)
        inside = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)          # [B, H, W]
        out = torch.where(inside.unsqueeze(1), fill, out)
    return out


def shift_heatmaps(maps: torch.Tensor, shift: torch.Tensor, config: TransformConfig) -> torch.Tensor:
    """The heatmap half of the pad-and-crop step for a batch, on the batch's device: what
    :func:`flip_shift_maps` gives on the CPU, bit for bit, from the maps as the cache stores them.

    Args:
        maps: [B, J, Hm, Wm] uint8 as stored (value = round(255 h), :data:`HEATMAP_SCALE`),
            already mirrored where the image was (``TrainTransform(heatmaps='stored')``).
        shift: [B, 2] integer content shifts (dy, dx) in image pixels, ``dx`` as after the
            mirror; a map cell is ``config.stride`` pixels, so a shift moves the maps by
            whole and fractional cells (the fraction blended linearly, zeros shifted in).
        config: the transform's configuration (its stride).

    Returns:
        [B, J, Hm, Wm] float32 maps: ``stored / 255`` where not moved, else the blend with
        the 1/255 folded into the first moved axis's weights, as on the CPU.
    """
    if maps.dtype != torch.uint8 or maps.dim() != 4:
        raise ValueError(f"maps must be [B, J, Hm, Wm] uint8, got {tuple(maps.shape)} {maps.dtype}")
    b = maps.shape[0]
    if shift.shape != (b, 2):
        raise ValueError(f"shift must be [{b}, 2], got {tuple(shift.shape)}")
    levels = _constants(config, maps.device)[3]
    cells = shift.to(maps.device, non_blocking=True).to(torch.float64) / config.stride     # [B, 2]
    whole = torch.floor(cells)
    frac = cells - whole
    two = frac > 1e-9                                           # a second tap (see _taps)
    moved = (whole != 0) | (frac != 0)                          # [B, 2] per axis
    one = torch.ones_like(frac[:, 0])                           # float64, as the CPU's Python floats
    inv = one / HEATMAP_SCALE
    scale = torch.stack([torch.where(moved[:, 0], inv, one),                      # 1/255 on the first moved axis
                         torch.where(moved[:, 1] & ~moved[:, 0], inv, one)], 1)
    w0 = ((1.0 - frac) * scale).to(torch.float32)             # as np.float32(weight * scale)
    w1 = torch.where(two, frac * scale, 0.0).to(torch.float32)
    out = maps.to(torch.float32)
    for axis in (0, 1):
        out = _blend(out, whole[:, axis].long(), w0[:, axis], w1[:, axis], dim=2 + axis)
    still = ~moved.any(1)
    return torch.where(still.view(b, 1, 1, 1), levels[maps.long()], out)


def _blend(maps: torch.Tensor, whole: torch.Tensor, w0: torch.Tensor, w1: torch.Tensor, dim: int) -> torch.Tensor:
    """``w0 * maps[i - whole] + w1 * maps[i - whole - 1]`` along ``dim`` per sample, zero outside
    the map (float32, in that order: the CPU blend's rounding); w0 = 1, w1 = 0 leaves it as is."""
    b, size = maps.shape[0], maps.shape[dim]
    view = [b, 1, 1, 1]
    view[dim] = size
    src0 = torch.arange(size, device=maps.device)[None, :] - whole[:, None]      # [B, size]
    out = None
    for src, w in ((src0, w0), (src0 - 1, w1)):
        inside = (src >= 0) & (src < size)
        weight = torch.where(inside, w[:, None], 0.0).view(view)
        index = src.clamp(0, size - 1).view(view).expand(maps.shape)
        term = maps.gather(dim, index) * weight
        out = term if out is None else out + term
    return out
