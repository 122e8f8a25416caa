"""Result reports: atomic JSON, Markdown tables in the layout of the paper's
Tables I and II, CMC curves and ranking visualisations (PNG, matplotlib Agg).
"""
from __future__ import annotations

import dataclasses
from collections import abc
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from vireid.evaluation.metrics import RankMetrics, TrialSummary
from vireid.io import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

__all__ = [
    "SETTINGS",
    "TABLE_METRICS",
    "write_results_json",
    "read_results_json",
    "table_entry",
    "markdown_table",
    "plot_cmc",
    "plot_ranking",
]

PathLike = Union[str, os.PathLike]

class _Settings(abc.Mapping):
    """Column groups of the results table per dataset: each registered reader's ``settings``
    (:mod:`vireid.data.registry`; SYSU-MM01 and RegDB: the paper's Tables I and II)."""

    def _table(self) -> Dict[str, Tuple[str, ...]]:
        from vireid.data import registry

        return {r.name: tuple(r.settings) for r in registry.readers() if r.settings}

    def __getitem__(self, key: str) -> Tuple[str, ...]:
        return self._table()[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


#: Column groups of the paper's tables per dataset.
SETTINGS: Mapping[str, Tuple[str, ...]] = _Settings()
#: Metrics per column group (the paper shows R1, R10, R20 and mAP; we add mINP).
TABLE_METRICS: Tuple[str, ...] = ("R1", "R10", "R20", "mAP", "mINP")

_FIGURE_SIZE_IN = (6.0, 4.5)
_CAPTION = 16  # pixels of text under each ranking cell (scores, query labels)
_FIGURE_DPI = 100


def _to_jsonable(value: Any) -> Any:
    """``json.dump`` default hook: numpy values and dataclasses to plain types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write a {type(value).__name__} to JSON")


def write_results_json(path: PathLike, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON, atomically (temporary file, then rename).

    numpy arrays and scalars, paths and dataclasses (e.g. :class:`RankMetrics`)
    are converted. Non-finite floats are refused, as JSON cannot hold them.

    Raises:
        ValueError: a NaN or infinite number in the payload.
        TypeError: a value that has no JSON form.
    """
    path = Path(path)
    try:
        text = json.dumps(payload, indent=2, sort_keys=True, default=_to_jsonable, allow_nan=False)
    except ValueError as err:
        raise ValueError(f"payload for {path} holds a NaN or infinite number: {err}") from None
    atomic_write_text(path, text + "\n")
    logger.info("wrote %s", path)
    return path


def read_results_json(path: PathLike) -> Any:
    """Read back a file written by :func:`write_results_json`."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def table_entry(result: Union[RankMetrics, TrialSummary]) -> Mapping[str, float]:
    """Metric name -> value in [0, 1] for :func:`markdown_table` (trial means for a
    :class:`TrialSummary`)."""
    if isinstance(result, TrialSummary):
        return dict(result.mean)
    if isinstance(result, RankMetrics):
        entry = {f"R{k}": float(result.cmc[k - 1]) for k in range(1, len(result.cmc) + 1)}
        entry.update(mAP=float(result.mAP), mINP=float(result.mINP))
        return entry
    raise TypeError(f"result must be RankMetrics or TrialSummary, got {type(result).__name__}")


def markdown_table(
    results: Mapping[str, Mapping[str, Mapping[str, float]]],
    dataset: str = "sysu",
    metrics: Sequence[str] = TABLE_METRICS,
    percent: bool = True,
    digits: int = 2,
) -> str:
    """Markdown table in the layout of the paper's Table I (SYSU) or II (RegDB).

    Args:
        results: row name (method or feature type, e.g. ``"f_ID"``, ``"f_ALL"``) ->
            setting (``"All-search"``/``"Indoor-search"`` or
            ``"Visible-to-Thermal"``/``"Thermal-to-Visible"``) -> metric -> value in
            [0, 1] (see :func:`table_entry`).
        dataset: 'sysu' or 'regdb' (picks the settings).
        metrics: metric columns under each setting.
        percent: print values times 100, as the paper does.
        digits: decimals.

    A setting or metric missing from a row prints as ``-``.

    Raises:
        ValueError: unknown dataset, no row, or a setting name the dataset lacks.
    """
    if dataset not in SETTINGS:
        raise ValueError(f"dataset must be one of {sorted(SETTINGS)}, got {dataset!r}")
    if not results:
        raise ValueError("results is empty: no row to print")
    settings = SETTINGS[dataset]
    for row, by_setting in results.items():
        unknown = set(by_setting) - set(settings)
        if unknown:
            raise ValueError(f"results[{row!r}] has settings {sorted(unknown)}, not in {settings}")
    scale = 100.0 if percent else 1.0
    header = ["Method"] + [f"{s} {m}" for s in settings for m in metrics]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for row, by_setting in results.items():
        cells = [str(row)]
        for setting in settings:
            values = by_setting.get(setting, {})
            for metric in metrics:
                value = values.get(metric)
                cells.append("-" if value is None else f"{scale * float(value):.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_cmc(
    path: PathLike,
    curves: Mapping[str, Sequence[float]],
    title: Optional[str] = None,
) -> Path:
    """CMC curves (rank 1..n, values in [0, 1], drawn in %) as a 600x450 PNG.

    Raises:
        ValueError: no curve, or an empty / non-finite / out-of-range curve.
    """
    if not curves:
        raise ValueError("curves is empty: nothing to plot")
    checked = {}
    for name, curve in curves.items():
        arr = np.asarray(curve, dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"curves[{name!r}] must be a non-empty 1-D sequence")
        if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"curves[{name!r}] must hold fractions in [0, 1]")
        checked[name] = arr
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=_FIGURE_SIZE_IN, dpi=_FIGURE_DPI)
    try:
        for name, arr in checked.items():
            ranks = np.arange(1, arr.size + 1)
            ax.plot(ranks, 100.0 * arr, marker="o", markersize=3, label=name)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("Rank")
        ax.set_ylabel("Matching rate (%)")
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        if title:
            ax.set_title(title)
        fig.tight_layout()
        path = Path(path)
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=_FIGURE_DPI)
    finally:
        plt.close(fig)
    return path


def _check_image(image: Any, name: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or min(arr.shape[:2]) == 0:
        raise ValueError(f"{name} must be an HxWx3 uint8 RGB array, got {arr.dtype} {arr.shape}")
    return arr


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _caption(canvas: np.ndarray, text: str, left: int, baseline: int) -> None:
    import cv2

    cv2.putText(canvas, text, (left, baseline), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)


def plot_ranking(
    path: PathLike,
    query_images: Sequence[np.ndarray],
    gallery_images_topk: Sequence[Sequence[np.ndarray]],
    correct_mask: Any,
    cell_size: Tuple[int, int] = (128, 64),
    border: int = 4,
    gap: int = 16,
    scores: Optional[Any] = None,
    query_labels: Optional[Sequence[str]] = None,
    known_mask: Optional[Any] = None,
) -> Path:
    """Ranking list PNG: one row per query, the query then its top-k gallery images,
    correct ones framed green and wrong ones red (the query is framed grey).

    Every image (HxWx3 uint8 RGB) is resized to ``cell_size`` (height, width). The
    PNG is ``n * (h + 2*border + 4)`` pixels high (plus 4) and
    ``(k + 1) * (w + 2*border + 4) + gap`` wide (plus 4), white background.

    Optional: ``scores`` (n, k) printed under the gallery images and ``query_labels``
    under the queries (each row then ``_CAPTION`` pixels higher); ``known_mask`` (n, k)
    boolean, False where correctness is unknown (no identity): framed grey.

    Raises:
        ValueError: inconsistent numbers of rows / columns, a mask that does not
            match, or an image that is not HxWx3 uint8.
    """
    n = len(query_images)
    if n == 0:
        raise ValueError("query_images is empty: nothing to plot")
    if len(gallery_images_topk) != n:
        raise ValueError(
            f"gallery_images_topk has {len(gallery_images_topk)} rows for {n} query images"
        )
    ks = {len(row) for row in gallery_images_topk}
    if len(ks) != 1 or 0 in ks:
        raise ValueError("gallery_images_topk rows must all hold the same, non-zero number of images")
    k = ks.pop()
    mask = np.asarray(correct_mask)
    if mask.shape != (n, k) or mask.dtype != bool:
        raise ValueError(f"correct_mask must be a boolean array of shape {(n, k)}, got {mask.dtype} {mask.shape}")
    known = np.ones((n, k), bool) if known_mask is None else np.asarray(known_mask)
    if known.shape != (n, k) or known.dtype != bool:
        raise ValueError(f"known_mask must be a boolean array of shape {(n, k)}, got {known.dtype} {known.shape}")
    if scores is not None and np.shape(scores) != (n, k):
        raise ValueError(f"scores must have shape {(n, k)}, got {np.shape(scores)}")
    if query_labels is not None and len(query_labels) != n:
        raise ValueError(f"query_labels has {len(query_labels)} labels for {n} queries")
    h, w = (int(v) for v in cell_size)
    if h < 1 or w < 1 or border < 0 or gap < 0:
        raise ValueError(f"cell_size, border and gap must be positive, got {cell_size}, {border}, {gap}")
    pad = 2  # white margin around each framed cell
    caption = _CAPTION if scores is not None or query_labels is not None else 0
    cell_h, cell_w = h + 2 * border + 2 * pad + caption, w + 2 * border + 2 * pad
    canvas = np.full((n * cell_h + 2 * pad, (k + 1) * cell_w + gap + 2 * pad, 3), 255, np.uint8)
    colours = {None: (128, 128, 128), True: (0, 170, 0), False: (220, 0, 0)}
    for i in range(n):
        row_images = [(_check_image(query_images[i], f"query_images[{i}]"), None,
                       None if query_labels is None else str(query_labels[i]))]
        row_images += [
            (_check_image(img, f"gallery_images_topk[{i}][{j}]"), bool(mask[i, j]) if known[i, j] else None,
             None if scores is None else f"{float(scores[i][j]):.3f}")
            for j, img in enumerate(gallery_images_topk[i])
        ]
        for j, (img, correct, text) in enumerate(row_images):
            top = pad + i * cell_h + pad
            left = pad + j * cell_w + (gap if j > 0 else 0) + pad
            canvas[top : top + h + 2 * border, left : left + w + 2 * border] = colours[correct]
            canvas[top + border : top + border + h, left + border : left + border + w] = _resize(
                img, h, w
            )
            if text:
                _caption(canvas, text, left, top + h + 2 * border + caption - 4)
    plt = _pyplot()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        plt.imsave(tmp, canvas, format="png")
    return path
