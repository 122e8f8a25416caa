"""The test protocols run on extracted features: SYSU-MM01 (all/indoor search, single/
multi shot, 10 trials) and RegDB (one trial, visible-to-thermal or thermal-to-visible).

Features are compared by inner product of the L2-normalised stripe embeddings (the
paper's release): ``distance = -q . g``, so that smaller is closer as the metrics
expect. Query and gallery lists come from :mod:`vireid.data.protocol` with the cameras
declared in ``data_manifests/<dataset>.yaml``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from vireid.data.manifest import Manifest
from vireid.data.protocol import Sample, regdb_test_lists, sysu_gallery, sysu_query
from vireid.data.spec import DatasetSpec, load_spec
from vireid.evaluation import RankMetrics, TrialSummary, aggregate_trials, regdb_metrics, sysu_metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProtocolSets:
    """Query list and one gallery list per trial."""

    name: str                          # e.g. "sysu/all/single", "regdb/trial3/v2t"
    query: List[Sample]
    galleries: List[List[Sample]]
    trials: List[int]

    def paths(self) -> List[str]:
        """Every image the protocol needs features of (query first, each once)."""
        seen: Dict[str, None] = {}
        for s in self.query:
            seen.setdefault(s.path)
        for g in self.galleries:
            for s in g:
                seen.setdefault(s.path)
        return list(seen)


def sysu_sets(manifest: Manifest, mode: str = "all", shot: str = "single",
              trials: Sequence[int] | None = None, spec: DatasetSpec | None = None) -> ProtocolSets:
    """SYSU-MM01 query and per-trial galleries over the manifest's test identities."""
    spec = spec or load_spec("sysu")
    proto = spec.protocol
    test_ids = manifest.splits.get("id_lists", {}).get("test")
    if not test_ids:
        raise ValueError("the manifest has no SYSU-MM01 test id list (exp/test_id.txt)")
    first = int(proto.get("first_trial", 0))
    trials = list(trials) if trials is not None else list(range(first, first + int(proto.get("trials", 10))))
    layout = manifest.layout()
    gallery_cameras = {m: list(c) for m, c in proto["gallery_cameras"].items()}
    query = sysu_query(layout, test_ids, mode, query_cameras=proto["query_cameras"])
    num_shots = int(proto.get("shots", {}).get("multi", 10))
    galleries = [sysu_gallery(layout, test_ids, mode, trial=t, shot=shot, gallery_cameras=gallery_cameras,
                              num_shots=num_shots) for t in trials]
    return ProtocolSets(f"sysu/{mode}/{shot}", query, galleries, trials)


def regdb_sets(manifest: Manifest, trial: int, direction: str = "v2t") -> ProtocolSets:
    """RegDB query and gallery of one trial (each trial has its own trained model)."""
    table = manifest.splits.get(f"trial:{trial}")
    if table is None:
        raise ValueError(f"the manifest has no RegDB trial {trial} (trials: "
                         f"{sorted(k for k in manifest.splits if k.startswith('trial:'))})")
    lines = {k: [f"{p} {label}" for p, label in v] for k, v in table.items()}
    query, gallery = regdb_test_lists(lines["test:visible"], lines["test:thermal"], direction,
                                      visible_source=f"idx/test_visible_{trial}.txt",
                                      thermal_source=f"idx/test_thermal_{trial}.txt")
    return ProtocolSets(f"regdb/trial{trial}/{direction}", query, [gallery], [trial])


@dataclass
class ProtocolResult:
    name: str
    per_feature: Dict[str, List[RankMetrics]] = field(default_factory=dict)   # feature -> per trial
    summary: Dict[str, TrialSummary] = field(default_factory=dict)
    trials: List[int] = field(default_factory=list)


def _features_of(samples: Sequence[Sample], features: np.ndarray, row_of: Mapping[str, int]) -> np.ndarray:
    try:
        return features[[row_of[s.path] for s in samples]]
    except KeyError as exc:
        raise ValueError(f"no features for test image {exc.args[0]}") from None


def evaluate_sets(sets: ProtocolSets, features: Mapping[str, np.ndarray], row_of: Mapping[str, int],
                  dataset: str) -> ProtocolResult:
    """Metrics of every feature type (e.g. f_id, f_all) on every trial of ``sets``.

    ``features[name]`` is (N, D) with row ``row_of[path]`` for each image.
    """
    result = ProtocolResult(sets.name, trials=list(sets.trials))
    q_pids = np.array([s.pid for s in sets.query])
    q_cams = np.array([s.cam for s in sets.query])
    for name, feats in features.items():
        qf = _features_of(sets.query, feats, row_of)                       # (Q, D)
        runs = []
        for gallery in sets.galleries:
            gf = _features_of(gallery, feats, row_of)                      # (G, D)
            distmat = -(qf @ gf.T)                                         # (Q, G), smaller = closer
            g_pids = np.array([s.pid for s in gallery])
            if dataset == "sysu":
                g_cams = np.array([s.cam for s in gallery])
                runs.append(sysu_metrics(distmat, q_pids, g_pids, q_cams, g_cams))
            else:
                runs.append(regdb_metrics(distmat, q_pids, g_pids))
        result.per_feature[name] = runs
        result.summary[name] = aggregate_trials(runs)
        log.info("%s %s: R1 %.2f mAP %.2f", sets.name, name, 100 * result.summary[name].mean["R1"],
                 100 * result.summary[name].mean["mAP"])
    return result
