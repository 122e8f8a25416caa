"""The test protocols run on extracted features: each registered dataset's (its reader's
:meth:`~vireid.data.readers.DatasetReader.protocol_sets` and ``metrics``, found through
:mod:`vireid.data.registry`): SYSU-MM01 (all/indoor search, single/multi shot, 10 trials),
RegDB (one trial, visible-to-thermal or thermal-to-visible), LLCM (IR-to-VIS and
VIS-to-IR, 10 trials).

Features are compared by inner product of the L2-normalised stripe embeddings (the
paper's release): ``distance = -q . g``, so that smaller is closer as the metrics
expect. Query and gallery lists come from :mod:`vireid.data.protocol` with the cameras
declared in ``vireid/data/manifests/<dataset>.yaml``.

:func:`evaluate_model` runs a protocol end to end on a network rebuilt from a checkpoint
(``vireid-eval``, the ablation runner); :func:`untrained_model` gives the same network
with the random weights its training started from; :func:`map_ratios` divides one
evaluation's mAP by another's (trained over untrained) after checking that both used the
same data, protocol and trials.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from vireid.data import registry
from vireid.data.manifest import Manifest
from vireid.data.protocol import Sample
from vireid.data.protocol_sets import ProtocolSets
from vireid.evaluation import RankMetrics, TrialSummary, aggregate_trials
from vireid.evaluation.rerank import RerankConfig, cosine_distance, k_reciprocal_rerank
from vireid.io import PathLike, file_sha256
from vireid.model import PoseVIReIDNet

log = logging.getLogger(__name__)


@dataclass
class ProtocolResult:
    name: str
    per_feature: Dict[str, List[RankMetrics]] = field(default_factory=dict)   # feature -> per trial
    summary: Dict[str, TrialSummary] = field(default_factory=dict)
    trials: List[int] = field(default_factory=list)
    #: the same after k-reciprocal re-ranking (empty without it)
    reranked: Dict[str, List[RankMetrics]] = field(default_factory=dict)
    reranked_summary: Dict[str, TrialSummary] = field(default_factory=dict)


def _features_of(samples: Sequence[Sample], features: np.ndarray, row_of: Mapping[str, int]) -> np.ndarray:
    try:
        return features[[row_of[s.path] for s in samples]]
    except KeyError as exc:
        raise ValueError(f"no features for test image {exc.args[0]}") from None


MetricFn = Callable[..., RankMetrics]


def evaluate_sets(sets: ProtocolSets, features: Mapping[str, np.ndarray], row_of: Mapping[str, int],
                  dataset: Union[str, MetricFn], rerank: Optional[RerankConfig] = None) -> ProtocolResult:
    """Metrics of every feature type (e.g. f_id, f_all) on every trial of ``sets``; with
    ``rerank`` also after k-reciprocal re-ranking (:mod:`vireid.evaluation.rerank`, cosine
    distances; the query-query distances computed once for all trials).

    ``features[name]`` is (N, D) with row ``row_of[path]`` for each image. ``dataset``: a
    registered dataset, whose reader's ``metrics`` rank, or such a function
    ``(distmat, q_pids, g_pids, q_cams, g_cams)``. ``sets.transposed``: each trial's gallery
    sample is ranked as the queries against every ``sets.query`` image.
    """
    metric_fn: MetricFn = dataset if callable(dataset) else registry.get(dataset).metrics
    result = ProtocolResult(sets.name, trials=list(sets.trials))
    q_pids = np.array([s.pid for s in sets.query])
    q_cams = np.array([s.cam for s in sets.query])

    def metrics(distmat: np.ndarray, gallery: Sequence[Sample]) -> RankMetrics:
        g_pids = np.array([s.pid for s in gallery])
        g_cams = np.array([s.cam for s in gallery])
        if sets.transposed:                                                # rows: the gallery sample
            return metric_fn(distmat, g_pids, q_pids, g_cams, q_cams)
        return metric_fn(distmat, q_pids, g_pids, q_cams, g_cams)

    for name, feats in features.items():
        qf = _features_of(sets.query, feats, row_of)                       # (Q, D)
        q_q = cosine_distance(qf, qf) if rerank is not None else None
        runs, reranked = [], []
        for gallery in sets.galleries:
            gf = _features_of(gallery, feats, row_of)                      # (G, D)
            rows, cols = (gf, qf) if sets.transposed else (qf, gf)
            runs.append(metrics(-(rows @ cols.T), gallery))                # (rows, cols), smaller = closer
            if q_q is not None:
                r_r, c_c = (cosine_distance(gf, gf), q_q) if sets.transposed else (q_q, cosine_distance(gf, gf))
                d_star = k_reciprocal_rerank(cosine_distance(rows, cols), r_r, c_c, rerank)
                reranked.append(metrics(d_star, gallery))
        result.per_feature[name] = runs
        result.summary[name] = aggregate_trials(runs)
        if reranked:
            result.reranked[name] = reranked
            result.reranked_summary[name] = aggregate_trials(reranked)
        log.info("%s %s: R1 %.2f mAP %.2f", sets.name, name, 100 * result.summary[name].mean["R1"],
                 100 * result.summary[name].mean["mAP"])
    return result


# ----------------------------------------------------------------------------- a checkpoint end to end
SETTING_NAMES = {"all": "All-search", "indoor": "Indoor-search", "v2t": "Visible-to-Thermal",
                 "t2v": "Thermal-to-Visible"}
FEATURE_ROWS = {"f_id": "f_ID", "f_all": "f_ALL"}
RERANKED_ROW = "{} re-ranked"     # table row of a feature after re-ranking, e.g. "f_ALL re-ranked"


class EvalError(ValueError):
    """A user's problem found before evaluating (cache, checkpoint, protocol); the message
    names the file at fault."""


@dataclass
class EvalOptions:
    """What to evaluate (the ``vireid-eval`` options)."""

    dataset: Optional[str] = None          # default: the checkpoint's dataset
    mode: str = "both"                     # SYSU: all | indoor | both
    shot: str = "single"                   # SYSU: single | multi
    trials: Optional[int] = None           # SYSU: number of gallery trials (default: the spec's 10)
    trial: Optional[int] = None            # RegDB: the trained trial (default: the checkpoint's)
    direction: str = "both"                # RegDB: v2t | t2v | both
    flip: bool = False
    device: str = "cpu"
    batch_size: int = 64
    progress: bool = False
    rerank: Optional[RerankConfig] = None  # also report k-reciprocal re-ranked results


@dataclass
class EvalReport:
    """One evaluation: the ``results.json`` payload and what is needed to draw it."""

    dataset: str
    payload: Dict[str, Any]
    table: Dict[str, Dict[str, Dict[str, float]]]       # row (f_ID, f_ALL) -> setting -> metric -> fraction
    markdown: str
    curves: Dict[str, Sequence[float]]
    protocol_sets: Dict[str, ProtocolSets]
    features: Dict[str, np.ndarray]
    row_of: Dict[str, int]
    indices: List[int]
    cache: Any                                          # the HeatmapCache read (for pictures)
    notes: List[str] = field(default_factory=list)      # what the reader should know (ids without queries)


def untrained_model(ck: Mapping[str, Any]) -> PoseVIReIDNet:
    """The checkpoint's network with random weights and none loaded: seeded with the run's
    ``seed`` exactly as ``vireid-train`` seeds it before building the model, so for a run
    without ``model.pretrained`` / ``model.pose_init`` these are the weights it started
    from. The global torch RNG is left as it was."""
    from vireid.engine.checkpoint import model_config_from

    seed = int((ck.get("config") or {}).get("seed", 0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PoseVIReIDNet(model_config_from(ck))


def evaluate_model(model: PoseVIReIDNet, ck: Mapping[str, Any], cache_dir: PathLike,
                   options: EvalOptions | None = None, checkpoint: PathLike | None = None,
                   weights: str = "trained") -> EvalReport:
    """The dataset's test protocol on ``model`` (rebuilt from checkpoint ``ck``) over the
    heatmap cache ``cache_dir``; ``weights`` ('trained' | 'untrained') is recorded.

    Raises :class:`EvalError` (or the cache's own ``CacheError`` / ``ManifestError``)
    naming the file at fault.
    """
    from vireid import __version__
    from vireid.data.shards import HeatmapCache
    from vireid.engine.features import extract_features
    from vireid.evaluation.report import markdown_table, table_entry

    opt = options or EvalOptions()
    cache_dir = Path(cache_dir)
    where = str(checkpoint) if checkpoint is not None else "the checkpoint"
    cache = HeatmapCache(cache_dir)
    manifest = Manifest.load(cache_dir / "manifest.json")
    dataset = opt.dataset or ck.get("dataset") or manifest.dataset
    if manifest.dataset != dataset:
        raise EvalError(f"{cache_dir} holds {manifest.dataset} data, not {dataset}")
    want_hw = tuple(model.config.input_size)
    have_hw = cache.geometry.input_size
    if want_hw != have_hw:
        raise EvalError(f"{where} was trained at {want_hw[0]}x{want_hw[1]} but {cache_dir} holds "
                        f"{have_hw[0]}x{have_hw[1]} crops: evaluate on a cache of the training size")
    trained_on = ck.get("manifest_hash")
    if trained_on and trained_on != manifest.hash:
        raise EvalError(f"{where} was trained on manifest {trained_on[:12]}, {cache_dir} holds "
                        f"manifest {manifest.hash[:12]}: not the same data set")
    try:
        reader = registry.get(dataset)
        protocol_sets = reader.protocol_sets(manifest, opt, ck)
        test_ids = reader.test_ids(manifest, opt.trial or ck.get("trial"))
    except ValueError as exc:
        raise EvalError(f"{cache_dir}: {exc}") from None

    seen: Dict[str, None] = {}
    for sets in protocol_sets.values():
        for p in sets.paths():
            seen.setdefault(p)
    paths = list(seen)
    indices = [cache.index_of(p) for p in paths]                       # CacheError names the cache
    row_of = {p: i for i, p in enumerate(paths)}
    feats = extract_features(model, cache, indices, batch_size=opt.batch_size, device=opt.device, flip=opt.flip,
                             progress=opt.progress, channels_last=True)
    feats = {k: v for k, v in feats.items() if k in FEATURE_ROWS}

    table: Dict[str, Dict[str, Dict[str, float]]] = {FEATURE_ROWS[k]: {} for k in feats}
    ck_info: Dict[str, Any] = {"path": str(checkpoint) if checkpoint is not None else None,
                               "epoch": ck.get("epoch"), "weights": weights}
    if checkpoint is not None and Path(checkpoint).is_file():
        ck_info["sha256"] = file_sha256(checkpoint)
    if weights == "untrained":
        ck_info["note"] = ("random initialisation from the checkpoint's model config, seeded with its seed; "
                           "no weights loaded")
    payload: Dict[str, Any] = {
        "protocol": {"dataset": dataset, "shot": opt.shot if reader.has_shots else None, "flip": opt.flip,
                     "settings": {name: s.name for name, s in protocol_sets.items()}},
        "checkpoint": ck_info, "manifest_hash": manifest.hash, "cache": str(cache_dir),
        "config": ck.get("config"), "code_version": __version__, "results": {},
    }
    if opt.rerank is not None:
        payload["protocol"]["rerank"] = opt.rerank.to_json()
        table.update({RERANKED_ROW.format(FEATURE_ROWS[k]): {} for k in feats})
    curves: Dict[str, Sequence[float]] = {}
    notes: List[str] = []
    for setting, sets in protocol_sets.items():
        res = evaluate_sets(sets, feats, row_of, dataset, rerank=opt.rerank)
        lonely = sets.ids_without_queries(test_ids)
        if lonely:
            total = len(set(test_ids) | {s.pid for g in sets.galleries for s in g} | {s.pid for s in sets.query})
            notes.append(f"{setting}: {len(lonely)} of {total} test identities have no query image and are in the "
                         f"gallery only: {', '.join(f'{p:04d}' for p in lonely[:20])}"
                         + (" ..." if len(lonely) > 20 else ""))
            log.info("%s", notes[-1])
        block = payload["results"][setting] = {"trials": res.trials, "ids_without_queries": lonely}
        for key, per_trial, summary, row in (("features", res.per_feature, res.summary, "{}"),
                                             ("reranked", res.reranked, res.reranked_summary, RERANKED_ROW)):
            if not per_trial:
                continue
            block[key] = {FEATURE_ROWS[k]: {"mean": summary[k].mean, "std": summary[k].std,
                                            "per_trial": [table_entry(r) for r in per_trial[k]]} for k in feats}
            for k in feats:
                table[row.format(FEATURE_ROWS[k])][setting] = summary[k].mean
                curves[f"{row.format(FEATURE_ROWS[k])} {setting}"] = summary[k].cmc_mean
    return EvalReport(dataset=dataset, payload=payload, table=table, markdown=markdown_table(table, dataset=dataset),
                      curves=curves, protocol_sets=protocol_sets, features=feats, row_of=row_of, indices=indices,
                      cache=cache, notes=notes)


def map_ratios(trained: Mapping[str, Any], baseline: Mapping[str, Any]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """mAP of ``trained`` over ``baseline`` (two ``results.json`` payloads of the same protocol):
    ``setting -> feature -> {'mAP', 'baseline_mAP', 'ratio'}``, fractions. Settings or
    features only one of them has are skipped; a zero baseline gives ratio ``None``.

    Raises :class:`EvalError` if the two were not evaluated on the same data and protocol.
    """
    for key in ("manifest_hash",):
        if trained.get(key) != baseline.get(key):
            raise EvalError(f"the two results are of different data ({key} {trained.get(key)} vs "
                            f"{baseline.get(key)})")
    pt, pb = trained.get("protocol", {}), baseline.get("protocol", {})
    if {k: pt.get(k) for k in ("dataset", "shot", "flip")} != {k: pb.get(k) for k in ("dataset", "shot", "flip")}:
        raise EvalError(f"the two results use different protocols ({pt} vs {pb})")
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for setting, res in trained.get("results", {}).items():
        other = baseline.get("results", {}).get(setting)
        if other is None:
            continue
        if list(other.get("trials", [])) != list(res.get("trials", [])):
            raise EvalError(f"{setting}: the two results use different trials ({res.get('trials')} vs "
                            f"{other.get('trials')})")
        for feat, block in res["features"].items():
            if feat not in other["features"]:
                continue
            m, b = float(block["mean"]["mAP"]), float(other["features"][feat]["mean"]["mAP"])
            out.setdefault(setting, {})[feat] = {"mAP": m, "baseline_mAP": b,
                                                 "ratio": m / b if b > 0 else None}
    return out


def ratio_table(ratios: Mapping[str, Mapping[str, Mapping[str, float]]], baseline_name: str = "untrained") -> str:
    """Markdown: one row per (setting, feature) with trained mAP, baseline mAP and their ratio."""
    lines = [f"| Setting | Feature | mAP trained | mAP {baseline_name} | ratio |", "|:---|:---|---:|---:|---:|"]
    for setting, by_feat in ratios.items():
        for feat, r in by_feat.items():
            ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}x"
            lines.append(f"| {setting} | {feat} | {100 * r['mAP']:.2f} | {100 * r['baseline_mAP']:.2f} | {ratio} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- vireid-eval's run, as a function
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
    from vireid.engine.checkpoint import build_model_from_checkpoint, load_checkpoint
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


def __getattr__(name: str) -> Any:
    """``<dataset>_sets`` (``sysu_sets``, ``regdb_sets``, ``llcm_sets``): the set builders, which
    live in their dataset's reader module (:mod:`vireid.data.readers`)."""
    import importlib

    if name.endswith("_sets") and name[:-len("_sets")] in registry.names():
        module = importlib.import_module(type(registry.get(name[:-len("_sets")])).__module__)
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
