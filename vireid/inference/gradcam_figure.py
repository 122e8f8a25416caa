"""One identity's Grad-CAM picture (OpenCV): rows = models, six columns

    RGB image | RGB Grad-CAM overlay | RGB pose mask | IR image | IR Grad-CAM overlay | IR pose mask

Geometry (pixels; ``ch`` x ``cw`` is one cell, the input size scaled to ``cell_height``)::

    width  = 2*BORDER + 6*cw + 4*PAD + GROUP_GAP
    height = 2*BORDER + HEADER + rows*(ROW_TITLE + ch) + (rows - 1)*PAD

Column titles in the header, each row's title (model, score) above its cells. Grad-CAM and
the mask are drawn as JET colour maps blended half and half with the image; the Grad-CAM
map is in [0, 1] already, the mask (values in (0, 1), often within a narrow band) is
stretched from its own minimum to its maximum, and that range is printed in the cell. A cell
with nothing to show (a model without the pose branch, an identity without images of one
modality) is grey with a label.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

BORDER = 6
HEADER = 22
ROW_TITLE = 20
PAD = 4
GROUP_GAP = 16
GREY = (128, 128, 128)
BACKGROUND = (255, 255, 255)
COLUMNS = ("RGB", "RGB Grad-CAM", "RGB pose mask", "IR", "IR Grad-CAM", "IR pose mask")
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class Cell:
    """One modality of one model: the crop and its maps (None: not available)."""

    image: Optional[np.ndarray] = None          # (H, W, 3) uint8 BGR
    cam: Optional[np.ndarray] = None            # (H, W) float32 in [0, 1]
    mask: Optional[np.ndarray] = None           # (H, W) float32 in (0, 1)
    note: str = ""                              # printed in the Grad-CAM cell (e.g. the score)
    missing: str = "no image"                   # the label of an empty image cell


@dataclass
class Row:
    """One model's row: its title and the RGB and IR cells."""

    title: str
    rgb: Cell
    ir: Cell
    mask_label: str = "no pose branch"          # the label of an empty mask cell


def cell_size(input_hw: Tuple[int, int], cell_height: int) -> Tuple[int, int]:
    """``(ch, cw)``: the input size scaled to ``cell_height`` rows (aspect kept)."""
    h, w = input_hw
    return int(cell_height), max(1, int(round(w * cell_height / h)))


def figure_size(rows: int, ch: int, cw: int) -> Tuple[int, int]:
    """``(height, width)`` of a picture of ``rows`` rows of ``ch`` x ``cw`` cells."""
    return (2 * BORDER + HEADER + rows * (ROW_TITLE + ch) + (rows - 1) * PAD,
            2 * BORDER + 6 * cw + 4 * PAD + GROUP_GAP)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """(H, W, 3) uint8 BGR blended with the JET colours of ``heat`` (H, W) in [0, 1]."""
    colours = cv2.applyColorMap(np.clip(heat * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(image, 1.0 - alpha, colours, alpha, 0.0)


def stretch(values: np.ndarray) -> Tuple[np.ndarray, float, float]:
    """``values`` rescaled from their minimum to their maximum ([0, 1]; a constant map -> 0.5),
    with that minimum and maximum."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-8:
        return np.full_like(values, 0.5), lo, hi
    return (values - lo) / (hi - lo), lo, hi


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.42, colour=(0, 0, 0),
          box: bool = False, max_width: Optional[int] = None) -> None:
    """``text`` at (x, y) (baseline), shrunk to ``max_width`` pixels (not below scale 0.25)."""
    if max_width is not None:
        width = cv2.getTextSize(text, _FONT, scale, 1)[0][0]
        if width > max_width:
            scale = max(0.25, scale * max_width / width)
    if box:
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
        cv2.rectangle(canvas, (x - 2, y - th - 3), (x + tw + 2, y + base), (0, 0, 0), -1)
        colour = (255, 255, 255)
    cv2.putText(canvas, text, (x, y), _FONT, scale, colour, 1, cv2.LINE_AA)


def _empty(ch: int, cw: int, label: str) -> np.ndarray:
    tile = np.full((ch, cw, 3), GREY, np.uint8)
    for k, word in enumerate(label.split(" ")):
        _text(tile, word, 4, ch // 2 - 8 + 16 * k, 0.45, (255, 255, 255), max_width=cw - 8)
    return tile


def _tiles(cell: Cell, mask_label: str, ch: int, cw: int) -> List[np.ndarray]:
    if cell.image is None:
        return [_empty(ch, cw, cell.missing)] * 3
    img = cv2.resize(cell.image, (cw, ch), interpolation=cv2.INTER_LINEAR)

    def fit(m: np.ndarray) -> np.ndarray:                # a (H, W) map at the cell's size
        return cv2.resize(m.astype(np.float32), (cw, ch), interpolation=cv2.INTER_LINEAR)

    cam = overlay(img, np.clip(fit(cell.cam), 0.0, 1.0)) if cell.cam is not None else _empty(ch, cw, "no map")
    if cell.note:
        _text(cam, cell.note, 4, ch - 6, 0.38, box=True, max_width=cw - 8)
    if cell.mask is None:
        mask = _empty(ch, cw, mask_label)
    else:
        scaled, lo, hi = stretch(fit(cell.mask))
        mask = overlay(img, scaled)
        _text(mask, f"{lo:.2f}-{hi:.2f}", 4, ch - 6, 0.38, box=True, max_width=cw - 8)
    return [img, cam, mask]


def render(rows: Sequence[Row], input_hw: Tuple[int, int], cell_height: int = 288) -> np.ndarray:
    """The picture of ``rows`` (see the module docstring): (height, width, 3) uint8 BGR."""
    if not rows:
        raise ValueError("render needs at least one row")
    ch, cw = cell_size(input_hw, cell_height)
    height, width = figure_size(len(rows), ch, cw)
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    xs = [BORDER + k * (cw + PAD) + (GROUP_GAP - PAD if k >= 3 else 0) for k in range(6)]
    for x, title in zip(xs, COLUMNS):
        if cv2.getTextSize(title, _FONT, 0.45, 1)[0][0] <= cw - 4:
            _text(canvas, title, x + 2, BORDER + HEADER - 7, 0.45)
        else:                                       # a narrow cell: two lines, e.g. "RGB pose" / "mask"
            for k, line in enumerate(title.rsplit(" ", 1)):
                _text(canvas, line, x + 2, BORDER + HEADER - 13 + 10 * k, 0.32, max_width=cw - 4)
    y = BORDER + HEADER
    for row in rows:
        _text(canvas, row.title, BORDER + 2, y + ROW_TITLE - 6, 0.42, max_width=width - 2 * BORDER - 4)
        y += ROW_TITLE
        tiles = _tiles(row.rgb, row.mask_label, ch, cw) + _tiles(row.ir, row.mask_label, ch, cw)
        for x, tile in zip(xs, tiles):
            canvas[y:y + ch, x:x + cw] = tile
        y += ch + PAD
    return canvas
