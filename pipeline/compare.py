"""How well one heatmap cache's joints agree with another's: PCKh@0.5 per modality.

``vireid-prep compare CACHE --reference REF`` scores the keypoints an estimator cached
(e.g. the LIP estimator's) against a reference cache of the same images (e.g. one made from
known keypoints, ``--estimator keypoints`` on synthetic data, or from a stronger estimator),
separately for RGB and IR: the paper's pose supervision is only as good as the cache, and a
LIP estimator trained on visible images may find far fewer joints in infrared.

Entries are matched by source path; a reference joint counts when its confidence is above
``min_confidence``; a joint the cache did not report (confidence 0 or no coordinates) counts
as wrong, as in LIP's evaluation. Distances and head sizes (the reference's B_Head - B_Neck)
are in the cached images' pixels (both caches must store the same input size).
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from vireid.cache.reader import CacheError, HeatmapCache
from vireid.data.modality import Modality
from vireid.pose.pckh import PCKh, pckh

MODALITIES = {int(Modality.RGB): "rgb", int(Modality.IR): "ir"}


def cache_agreement(cache: HeatmapCache, reference: HeatmapCache,
                    min_confidence: float = 0.0) -> Tuple[Dict[str, PCKh], int]:
    """``({'rgb': PCKh, 'ir': PCKh}, images matched)`` of ``cache``'s keypoints against
    ``reference``'s on the images both hold (a modality without such images is left out).

    Raises :class:`CacheError` when the caches store different input sizes or share no image.
    """
    have, want = cache.geometry.input_size, reference.geometry.input_size
    if have != want:
        raise CacheError(f"{cache.root} stores {'x'.join(map(str, have))} images but {reference.root} "
                         f"{'x'.join(map(str, want))}: keypoints are compared in the cached images' pixels, so "
                         "both caches must have one input size")
    ref_row = {p: i for i, p in enumerate(reference.paths)}
    pairs = [(i, ref_row[p]) for i, p in enumerate(cache.paths) if p in ref_row]
    if not pairs:
        raise CacheError(f"{cache.root} and {reference.root} share no image (entries are matched by source path)")
    mine, theirs = (np.asarray(v, np.int64) for v in zip(*pairs))
    pred = cache.keypoints()[mine].astype(np.float64)                     # (M, 16, 2)
    conf = cache.metadata()["confidence"][mine]
    pred[~(conf > 0)] = np.nan                                            # not reported: counted wrong
    ref_meta = reference.metadata()
    gt = reference.keypoints()[theirs].astype(np.float64)
    gt[~(ref_meta["confidence"][theirs] > min_confidence)] = np.nan       # not in the reference: left out
    modality = ref_meta["modality"][theirs]
    out = {name: pckh(gt[modality == code], pred[modality == code])
           for code, name in MODALITIES.items() if (modality == code).any()}
    return out, len(pairs)


def describe_agreement(result: Dict[str, PCKh]) -> str:
    """One line, e.g. ``PCKh@0.5 RGB 71.2% (1526 images, 19,840 joints), IR 40.3% (...)``."""
    parts = [f"{name.upper()} {p.average:.1f}% ({p.images} images, {p.joints:,} joints)" for name, p in result.items()]
    return "PCKh@0.5 " + ", ".join(parts)
