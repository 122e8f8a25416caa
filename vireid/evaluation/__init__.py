"""vireid.evaluation: ranking metrics (CMC, mAP, mINP) of the SYSU-MM01 and RegDB
protocols, their aggregation over trials, and result reports (JSON, Markdown,
plots). :mod:`vireid.evaluation.reference` holds the readable per-query version of
the metrics; :mod:`vireid.evaluation.report` the writers (imported on demand, as
they load matplotlib).
"""
from vireid.evaluation.metrics import (
    RankMetrics,
    TrialSummary,
    aggregate_trials,
    rank_metrics,
    regdb_metrics,
    sysu_excluded_camera_pairs,
    sysu_metrics,
)
from vireid.evaluation.metrics_llcm import llcm_metrics

__all__ = [
    "RankMetrics",
    "TrialSummary",
    "aggregate_trials",
    "llcm_metrics",
    "rank_metrics",
    "regdb_metrics",
    "sysu_excluded_camera_pairs",
    "sysu_metrics",
]
