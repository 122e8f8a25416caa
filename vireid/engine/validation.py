"""Validation during training on held-out identities (``data.holdout``): IR queries against
the RGB gallery, mAP / Rank-1 of f_all and f_id with the RegDB-style metrics, and the pose
branch's PCKh on RGB and IR images when it predicts joint maps.

The ranking is ``vireid-eval``'s evaluator (:func:`vireid.evaluation.testing.evaluate_sets`) on a
one-trial protocol of the held-out images, so validation and test scores are computed alike."""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from vireid.data.protocol import Sample
from vireid.cache.reader import HeatmapCache
from vireid.data.modality import Modality
from vireid.engine.errors import TrainError
from vireid.evaluation.testing import ProtocolSets, evaluate_sets
from vireid.evaluation.features import extract_features
from vireid.evaluation.pose_accuracy import branch_pckh
from vireid.model import PoseVIReIDNet


def validation_split(cache: HeatmapCache, val_indices: Sequence[int],
                     meta: Optional[Mapping[str, np.ndarray]] = None) -> Tuple[List[int], List[int]]:
    """Held-out images of identities seen in both modalities: (query IR, gallery RGB) cache indices
    (``meta``: the cache's metadata, gathered here unless the caller has it)."""
    meta = cache.metadata() if meta is None else meta
    idx = np.asarray(list(val_indices), dtype=np.int64)
    pids, mods = meta["pid"][idx], meta["modality"][idx]
    both = set(pids[mods == Modality.RGB].tolist()) & set(pids[mods == Modality.IR].tolist())
    query = [int(i) for i, p, m in zip(idx, pids, mods) if m == 1 and p in both]
    gallery = [int(i) for i, p, m in zip(idx, pids, mods) if m == 0 and p in both]
    return query, gallery


@torch.no_grad()
def validate(model: PoseVIReIDNet, cache: HeatmapCache, query: Sequence[int], gallery: Sequence[int],
             device: torch.device, batch_size: int = 64, min_confidence: float = 0.0,
             meta: Optional[Mapping[str, np.ndarray]] = None) -> Dict[str, float]:
    """mAP / Rank-1 of IR queries against the RGB gallery (fractions), for f_all and f_id; with a
    pose branch that predicts joint maps, also its PCKh@0.5 against the cached targets on the
    RGB and the IR images (``pckh_rgb``, ``pckh_ir``, fractions; :mod:`vireid.evaluation.pose_accuracy`)."""
    indices = list(query) + list(gallery)
    meta = cache.metadata() if meta is None else meta
    feats = extract_features(model, cache, indices, batch_size=batch_size, device=str(device), meta=meta)
    for name in ("f_all", "f_id"):
        bad = int((~np.isfinite(np.asarray(feats[name]))).any(axis=1).sum())
        if bad:
            # finite losses in training mode, non-finite features in eval mode (e.g. BatchNorm's
            # running statistics): a ranking of NaN distances would mean nothing
            raise TrainError(f"validation: {name} of {bad} of {len(indices)} held-out images is not finite "
                             "(NaN or inf): the model diverged; last.pt keeps the last good epoch")

    def samples(rows: Sequence[int]) -> List[Sample]:
        return [Sample(cache.paths[i], int(meta["pid"][i]), int(meta["camid"][i])) for i in rows]

    sets = ProtocolSets("validation", samples(query), [samples(gallery)], [0])
    row_of = {cache.paths[i]: r for r, i in enumerate(indices)}
    result = evaluate_sets(sets, {k: feats[k] for k in ("f_all", "f_id")}, row_of, "regdb")
    out: Dict[str, float] = {}
    for name, prefix in (("f_all", ""), ("f_id", "f_id_")):
        (m,) = result.per_feature[name]                               # one trial
        out[f"{prefix}mAP"] = float(m.mAP)
        out[f"{prefix}R1"] = float(m.rank(1))
    for name, score in branch_pckh(model, cache, indices, device, batch_size, min_confidence, meta).items():
        if score.average == score.average:                           # NaN: no joint could be scored
            out[f"pckh_{name}"] = score.average / 100.0
    return out
