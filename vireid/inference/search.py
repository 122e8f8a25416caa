"""Cross-modal search: query features against a feature file's gallery, top-k lists, their
JSON and their ranking picture."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from vireid.data.modality import Modality
from vireid.evaluation.rerank import RerankConfig, rerank_features
from vireid.inference.featurefile import FeatureFile

log = logging.getLogger(__name__)

#: Re-ranking holds the (Q + G)^2 float32 distances; refused above this many bytes.
MAX_RERANK_BYTES = 8 << 30
MODALITY_LABELS = {int(Modality.RGB): "RGB", int(Modality.IR): "IR"}


@dataclass
class Ranking:
    """Top-k gallery rows per query with their cosine similarity (and the re-ranked distance)."""

    order: np.ndarray                    # (Q, k) gallery rows, best first
    similarity: np.ndarray               # (Q, k) cosine similarity
    distance: Optional[np.ndarray] = None   # (Q, k) re-ranked distance d*, when re-ranked


def rank_gallery(query: np.ndarray, gallery: np.ndarray, top_k: int, rerank: Optional[RerankConfig] = None
                 ) -> Ranking:
    """Rank ``gallery`` (G, D) for each ``query`` (Q, D) row (unit rows): by cosine similarity,
    or by the k-reciprocal re-ranked distance. Ties keep the gallery order."""
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(f"query {query.shape} and gallery {gallery.shape} features do not fit")
    k = min(int(top_k), gallery.shape[0])
    sims = query @ gallery.T
    distance = None
    if rerank is not None:
        n = query.shape[0] + gallery.shape[0]
        if n * n * 4 > MAX_RERANK_BYTES:
            raise ValueError(f"re-ranking {query.shape[0]} queries against {gallery.shape[0]} images needs "
                             f"{n * n * 4 / 2 ** 30:.1f} GiB of distances (limit {MAX_RERANK_BYTES >> 30} GiB)")
        distance = rerank_features(query, gallery, rerank)
        order = np.argsort(distance, axis=1, kind="stable")[:, :k]
    else:
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    rows = np.arange(len(query))[:, None]
    return Ranking(order, sims[rows, order], None if distance is None else distance[rows, order])


def ranking_json(query_names: Sequence[str], query_modality: Sequence[int], query_pids: Sequence[int],
                 gallery: FeatureFile, ranking: Ranking, rerank: Optional[RerankConfig]) -> Dict[str, Any]:
    """The ``vireid-search`` result document."""
    queries: List[Dict[str, Any]] = []
    for qi, name in enumerate(query_names):
        hits = []
        for rank, (g, sim) in enumerate(zip(ranking.order[qi], ranking.similarity[qi]), start=1):
            g_pid = int(gallery.pid[g])
            hit = {"rank": rank, "path": gallery.paths[g], "similarity": float(sim),
                   "modality": MODALITY_LABELS[int(gallery.modality[g])].lower(),
                   "pid": g_pid if g_pid >= 0 else None, "camid": int(gallery.camid[g]) if gallery.camid[g] >= 0
                   else None, "correct": (g_pid == query_pids[qi]) if g_pid >= 0 and query_pids[qi] >= 0 else None}
            if ranking.distance is not None:
                hit["distance"] = float(ranking.distance[qi][rank - 1])
            hits.append(hit)
        queries.append({"query": name, "modality": MODALITY_LABELS[int(query_modality[qi])].lower(),
                        "pid": int(query_pids[qi]) if query_pids[qi] >= 0 else None, "top": hits})
    return {"gallery": str(gallery.path), "gallery_root": gallery.meta.get("root"),
            "checkpoint": gallery.meta.get("checkpoint"), "checkpoint_sha256": gallery.meta.get("checkpoint_sha256"),
            "feature": gallery.meta.get("feature"), "flip": gallery.meta.get("flip"),
            "ranked_by": "re-ranked distance" if rerank is not None else "cosine similarity",
            "rerank": rerank.to_json() if rerank is not None else None, "queries": queries}


def ranking_png(path: Path, query_images: Sequence[np.ndarray], query_modality: Sequence[int],
                query_pids: Sequence[int], gallery: FeatureFile, ranking: Ranking) -> Path:
    """Each query (BGR) then its top-k gallery crops with their scores (cosine similarity, or
    the re-ranked distance); green / red where both identities are known, else grey."""
    from vireid.data.images import load_image
    from vireid.evaluation.report import plot_ranking

    def rgb(image_bgr: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image_bgr[:, :, ::-1])

    def gallery_rgb(g: int) -> np.ndarray:
        loaded = load_image(gallery.image_path(g))
        if isinstance(loaded, str):
            log.warning("%s: %s; drawn blank", gallery.image_path(g), loaded)
            return np.full((128, 64, 3), 255, np.uint8)
        return rgb(loaded[0])

    g_pids = gallery.pid[ranking.order]
    q_pids = np.asarray(query_pids)[:, None]
    known = (g_pids >= 0) & (q_pids >= 0)
    scores = ranking.distance if ranking.distance is not None else ranking.similarity
    labels = [f"{MODALITY_LABELS[int(m)]}" + (f" id {p}" if p >= 0 else "")
              for m, p in zip(query_modality, query_pids)]
    return plot_ranking(path, [rgb(im) for im in query_images], [[gallery_rgb(g) for g in row]
                                                                 for row in ranking.order],
                        known & (g_pids == q_pids), scores=scores, query_labels=labels, known_mask=known)
