"""PNG plots of a run: the loss curves (``losses.png``) and validation mAP / Rank-1 (``val.png``)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from vireid.engine.runlog import loss_series
from vireid.io import PathLike, atomic_path

_SIZE_IN = (8.0, 4.5)
_DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average, NaN-aware (a NaN counts as missing)."""
    if window <= 1 or values.size == 0:
        return values
    ok = np.isfinite(values)
    v = np.where(ok, values, 0.0)
    c = np.cumsum(np.insert(v, 0, 0.0))
    n = np.cumsum(np.insert(ok.astype(float), 0, 0.0))
    idx = np.arange(1, values.size + 1)
    lo = np.maximum(idx - window, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (c[idx] - c[lo]) / (n[idx] - n[lo])


def _save(fig: Any, path: PathLike) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI)
    return path


def grad_share_series(records: Sequence[Mapping[str, Any]], block: str = "modality_shared") -> Dict[str, List[float]]:
    """``{'step': [...], term: [share, ...]}`` of the ``grad`` records on ``block`` (terms with
    a non-zero share somewhere)."""
    grads = [r for r in records if r.get("kind") == "grad"]
    out: Dict[str, List[float]] = {"step": [float(r["step"]) for r in grads]}
    suffix = "_share"
    terms = sorted({k[len(block) + 1:-len(suffix)] for r in grads for k in r
                    if k.startswith(block + "/") and k.endswith(suffix)})
    for t in terms:
        vals = [float(r.get(f"{block}/{t}{suffix}", math.nan)) for r in grads]
        if any(v > 0 for v in vals):
            out[t] = vals
    return out


def plot_losses(path: PathLike, records: Sequence[Mapping[str, Any]], smooth: int = 0) -> Path:
    """Every named loss against the global step (thin: per step; thick: moving average),
    log-scaled, with the learning rate underneath and, when the log has ``grad`` records,
    each weighted term's share of the gradient norm on the modality-shared module."""
    series = loss_series(list(records))
    steps = np.asarray(series.pop("step"))
    lr = np.asarray(series.pop("lr"))
    if steps.size == 0:
        raise ValueError("the run log has no step records: nothing to plot")
    shares = grad_share_series(records)
    window = smooth or max(1, steps.size // 20)
    plt = _pyplot()
    rows = 3 if len(shares) > 1 else 2
    fig, axes = plt.subplots(rows, 1, figsize=(_SIZE_IN[0], _SIZE_IN[1] * (1.4 if rows == 3 else 1.0)), sharex=True,
                             gridspec_kw={"height_ratios": [3, 1, 2][:rows]})
    ax, ax_lr = axes[0], axes[1]
    try:
        for name, values in series.items():
            v = np.asarray(values)
            line, = ax.plot(steps, v, linewidth=0.6, alpha=0.35)
            ax.plot(steps, _smooth(v, window), linewidth=1.6, color=line.get_color(), label=name)
        if all(np.nanmin(np.asarray(v)) > 0 for v in series.values() if np.isfinite(v).any()):
            ax.set_yscale("log")
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8, ncol=2)
        ax.set_title(f"training losses (moving average over {window} steps)")
        ax_lr.plot(steps, lr, color="black", linewidth=1.0)
        ax_lr.set_ylabel("lr")
        ax_lr.grid(True, alpha=0.3)
        if rows == 3:
            ax_g = axes[2]
            g_steps = shares.pop("step")
            for name, values in shares.items():
                ax_g.plot(g_steps, [100.0 * v for v in values], marker="o", markersize=3, label=name)
            ax_g.set_ylabel("% of grad norm\non layer2")
            ax_g.set_ylim(0, 100)
            ax_g.grid(True, alpha=0.3)
            ax_g.legend(loc="best", fontsize=8, ncol=4)
        axes[-1].set_xlabel("step")
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_validation(path: PathLike, records: Sequence[Mapping[str, Any]]) -> Path:
    """Validation mAP and Rank-1 (f_all and f_id, in %) against the epoch, and the pose
    branch's PCKh@0.5 on RGB and IR images (dotted) when the log has it."""
    val = [r for r in records if r.get("kind") == "val"]
    if not val:
        raise ValueError("the run log has no validation records: nothing to plot")
    epochs = [int(r["epoch"]) for r in val]
    curves: Dict[str, List[float]] = {}
    for key, label in (("mAP", "mAP f_all"), ("R1", "R1 f_all"), ("f_id_mAP", "mAP f_id"), ("f_id_R1", "R1 f_id"),
                       ("pckh_rgb", "pose PCKh RGB"), ("pckh_ir", "pose PCKh IR")):
        if key.startswith("pckh") and not any(key in r for r in val):
            continue
        curves[label] = [100.0 * float(r.get(key, math.nan)) for r in val]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=_SIZE_IN)
    try:
        for label, values in curves.items():
            ax.plot(epochs, values, marker="o", markersize=3, label=label,
                    linestyle=":" if "PCKh" in label else "-" if "f_all" in label else "--")
        ax.set_xlabel("epoch")
        ax.set_ylabel("%")
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="best")
        ax.set_title("validation on held-out identities (query IR, gallery RGB)")
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_sweep(path: PathLike, curves: Mapping[str, Sequence[Mapping[str, Any]]], title: str) -> Path:
    """Validation mAP (f_all, %) against the epoch, one line per run (the paper's Fig. 5 form):
    ``curves`` maps a label to that run's log records."""
    lines = {}
    for label, records in curves.items():
        val = [r for r in records if r.get("kind") == "val"]
        if val:
            lines[label] = ([int(r["epoch"]) for r in val], [float(r.get("mAP", math.nan)) for r in val], None)
    if not lines:
        raise ValueError("no run has validation records (train with data.holdout): nothing to plot")
    return plot_bands(path, lines, title)


def plot_bands(path: PathLike, bands: Mapping[str, Any], title: str) -> Path:
    """Validation mAP (f_all, %) against the epoch, one line per label, with a shaded +- sd
    band where one is given: ``bands`` maps a label to ``(epochs, mean, sd or None)``
    (fractions), e.g. a Table IV row over seeds."""
    if not bands:
        raise ValueError("no curves to plot")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=_SIZE_IN)
    try:
        for label, (epochs, mean, sd) in bands.items():
            m = 100.0 * np.asarray(mean, dtype=float)
            line, = ax.plot(list(epochs), m, marker="o", markersize=3, label=label)
            if sd is not None:
                s = 100.0 * np.asarray(sd, dtype=float)
                ax.fill_between(list(epochs), m - s, m + s, color=line.get_color(), alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation mAP, f_all (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
        ax.set_title(title)
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)
