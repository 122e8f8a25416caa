"""``vireid-eval``'s run as a function: a checkpoint (or its untrained network) through a
dataset's test protocol (:func:`vireid.evaluation.testing.evaluate_model`), optionally
compared with an earlier ``results.json``, then ``results.json`` / ``results.md`` and the
pictures written. ``vireid-eval`` and ``vireid-train --evaluate`` both call it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch

from vireid.data import registry
from vireid.data.manifest import Manifest
from vireid.data.protocol_sets import ProtocolSets
from vireid.evaluation.testing import (EvalError, EvalOptions, EvalReport, evaluate_model, map_ratios, ratio_table,
                                       untrained_model)
from vireid.io import PathLike
from vireid.model import PoseVIReIDNet

@dataclass
class CheckpointEvaluation:
    """One checkpoint evaluated by :func:`evaluate_checkpoint`, ready for :func:`write_evaluation`."""

    report: EvalReport
    out: Path                                        # the output folder (checked writable)
    ck: Mapping[str, Any]                            # the checkpoint read
    options: EvalOptions
    untrained: bool = False
    compare_path: Optional[Path] = None
    baseline: Optional[Dict[str, Any]] = None        # the --compare results.json
    ratios: Optional[Dict[str, Any]] = None          # map_ratios against it
    pose_png: Optional[np.ndarray] = None            # target vs predicted skeletons (a pose branch)
    pictures: List[Path] = field(default_factory=list)   # written by write_evaluation


def evaluate_checkpoint(checkpoint: PathLike, cache_dir: PathLike, options: EvalOptions,
                        out: Optional[PathLike] = None, untrained: bool = False,
                        compare_path: Optional[PathLike] = None) -> CheckpointEvaluation:
    """``vireid-eval`` without its command line: the test protocol of ``options`` on the
    network of ``checkpoint`` (or, ``untrained``, that network with its seeded random weights)
    over ``cache_dir``; with ``compare_path`` (an earlier ``results.json``) the mAP ratios
    against it. ``out`` defaults to ``eval-<dataset>[-untrained]`` beside the checkpoint and
    is checked writable before the evaluation. ``options.device`` is a resolved device.

    Raises :class:`EvalError`, ``CheckpointError``, ``CacheError``, ``ManifestError`` or
    ``WriteError`` naming the file at fault. :func:`write_evaluation` writes the result.
    """
    from vireid.model.checkpoint import build_model_from_checkpoint, load_checkpoint
    from vireid.evaluation.report import read_results_json
    from vireid.io import ensure_writable

    checkpoint = Path(checkpoint)
    compare = Path(compare_path) if compare_path is not None else None
    baseline = None
    if compare is not None:
        if not compare.is_file():
            raise EvalError(f"{compare}: results file not found (--compare)")
        try:
            baseline = read_results_json(compare)
        except (OSError, ValueError) as exc:
            raise EvalError(f"{compare}: not a readable results.json ({exc})") from None
    if untrained:
        ck = load_checkpoint(checkpoint)
        model = untrained_model(ck)
    else:
        model, ck = build_model_from_checkpoint(checkpoint)
    ds = options.dataset or ck.get("dataset") or _cache_dataset(Path(cache_dir))
    out_dir = Path(out) if out is not None else checkpoint.parent / (f"eval-{ds}" + ("-untrained" if untrained else ""))
    ensure_writable(out_dir)                     # before the evaluation, whose results would be lost
    report = evaluate_model(model, ck, cache_dir, options, checkpoint=checkpoint,
                            weights="untrained" if untrained else "trained")
    pose_png = _pose_branch_outputs(model, report, options.device, options.batch_size)
    ratios = None
    if baseline is not None:
        try:
            ratios = map_ratios(report.payload, baseline)
        except EvalError as exc:
            raise EvalError(f"--compare {compare}: {exc}") from None
        report.payload["compare"] = {"results": str(compare),
                                     "baseline_weights": baseline.get("checkpoint", {}).get("weights"),
                                     "mAP_ratio": ratios}
    return CheckpointEvaluation(report=report, out=out_dir, ck=ck, options=options, untrained=untrained,
                                compare_path=compare, baseline=baseline, ratios=ratios, pose_png=pose_png)


def _pose_branch_outputs(model: PoseVIReIDNet, report: EvalReport, device: str,
                         batch_size: int) -> Optional[np.ndarray]:
    """With a pose branch that predicts joint maps: its PCKh@0.5 against the cached targets on
    the test images, per modality, into ``report.payload['pose_branch']``, and the picture of
    target vs predicted skeletons (returned, written with the other pictures)."""
    from vireid.evaluation.pose_accuracy import branch_pckh, scores_joints
    from vireid.evaluation.pose_figure import pairs_per_identity, pose_figure

    if not scores_joints(model):
        return None
    dev = torch.device(device)
    scores = branch_pckh(model, report.cache, report.indices, dev, batch_size)
    report.payload["pose_branch"] = {"pckh@0.5": {m.upper(): s.to_json() for m, s in scores.items()}}
    pairs = pairs_per_identity(report.cache, report.indices)
    return pose_figure(model, report.cache, pairs, dev) if pairs else None


def _cache_dataset(cache_dir: Path) -> str:
    """The dataset of a cache's manifest (for the default output folder), without loading the cache."""
    return Manifest.load(cache_dir / "manifest.json", verify_hash=False).dataset


def evaluation_markdown(ev: CheckpointEvaluation) -> str:
    """The table of ``results.md`` (and of the terminal), with the untrained note."""
    md = ev.report.markdown
    if ev.untrained:
        md = ("Untrained reference: the network of the checkpoint with random weights (seed "
              f"{(ev.ck.get('config') or {}).get('seed', 0)}), no weights loaded.\n\n") + md
    return md


def write_evaluation(ev: CheckpointEvaluation) -> List[Path]:
    """``results.json`` first (the numbers), then ``results.md`` and the pictures (``cmc.png``,
    ``ranking.png``, ``pose.png`` with a pose branch) into ``ev.out``; returns the pictures.
    Raises ``WriteError`` naming the file."""
    from vireid.evaluation.report import plot_cmc, write_results_json
    from vireid.io import WriteError, atomic_path, atomic_write_text, write_error

    report, out = ev.report, ev.out
    ds = report.dataset
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out, exc, "cannot create the folder") from None
    write_results_json(out / "results.json", report.payload)
    atomic_write_text(out / "results.md", evaluation_markdown(ev) + (
        f"\nmAP against {ev.compare_path}:\n\n{ratio_table(ev.ratios)}" if ev.ratios is not None else ""))
    plot_cmc(out / "cmc.png", report.curves, title=registry.get(ds).cmc_title(ev.options.shot))
    first = next(iter(report.protocol_sets.values()))
    _ranking_png(out / "ranking.png", report.cache, report.row_of, report.indices, first, report.features["f_all"])
    pictures = [out / "cmc.png", out / "ranking.png"]
    if ev.pose_png is not None:
        import cv2

        with atomic_path(out / "pose.png", suffix=".png") as tmp:
            if not cv2.imwrite(str(tmp), ev.pose_png):
                raise WriteError(f"{out / 'pose.png'}: cannot write the picture")
        pictures.append(out / "pose.png")
    ev.pictures = pictures
    return pictures


def _ranking_png(path: Path, cache: Any, row_of: Dict[str, int], indices: List[int], sets: ProtocolSets,
                 feats: np.ndarray, num_queries: int = 6, top: int = 10) -> None:
    """Queries (spread over identities) with their top-``top`` gallery images of trial 0."""
    from vireid.evaluation.report import plot_ranking

    gallery = sets.galleries[0]
    q_rows = np.linspace(0, len(sets.query) - 1, num=min(num_queries, len(sets.query))).astype(int)
    qf = feats[[row_of[sets.query[i].path] for i in q_rows]]
    gf = feats[[row_of[s.path] for s in gallery]]
    order = np.argsort(-(qf @ gf.T), axis=1, kind="stable")[:, :min(top, len(gallery))]

    def rgb(p: str) -> np.ndarray:
        return cache.read_arrays(indices[row_of[p]])[0][:, :, ::-1].copy()

    plot_ranking(path, [rgb(sets.query[i].path) for i in q_rows],
                 [[rgb(gallery[j].path) for j in row] for row in order],
                 np.array([[gallery[j].pid == sets.query[i].pid for j in row] for i, row in zip(q_rows, order)]))


