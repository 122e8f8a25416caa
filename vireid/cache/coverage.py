"""How much pose supervision a heatmap cache holds: the share of joints the estimator
reported above a confidence threshold, per modality (issue 15: a weak estimator leaves most
cached joints empty, and then the pose loss has little to teach, the more so in infrared).
"""
from __future__ import annotations

from typing import Dict, Mapping, Sequence

import numpy as np

from vireid.data.modality import Modality

MODALITY_NAMES = {int(Modality.RGB): "RGB", int(Modality.IR): "IR"}
#: thresholds reported by default: any detection (the pose loss's default) and a confident one
DEFAULT_THRESHOLDS = (0.0, 0.5)


def joint_coverage(metadata: Mapping[str, np.ndarray],
                   thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> Dict[str, Dict[float, float]]:
    """``{'RGB': {t: share}, 'IR': {t: share}}``: the fraction of (image, joint) pairs of each
    modality whose confidence is above ``t`` (from :meth:`HeatmapCache.metadata`'s
    ``modality`` (N,) and ``confidence`` (N, 16)); a modality without images is left out."""
    conf = np.asarray(metadata["confidence"], np.float64)
    mods = np.asarray(metadata["modality"])
    out: Dict[str, Dict[float, float]] = {}
    for code, name in MODALITY_NAMES.items():
        sel = conf[mods == code]
        if sel.size:
            out[name] = {float(t): float((sel > t).mean()) for t in thresholds}
    return out


def describe_coverage(coverage: Mapping[str, Mapping[float, float]]) -> str:
    """One line, e.g. ``joints with confidence > 0: RGB 81.2%, IR 64.0%; > 0.5: RGB 40.1%, IR 22.3%``."""
    if not coverage:
        return "no images"
    thresholds = list(next(iter(coverage.values())))
    parts = []
    for i, t in enumerate(thresholds):
        shares = ", ".join(f"{m} {100 * c[t]:.1f}%" for m, c in coverage.items())
        parts.append(f"{'joints with confidence ' if i == 0 else ''}> {t:g}: {shares}")
    return "; ".join(parts)
