"""Seeded random streams for the synthetic data sets.

Every random draw comes from a :class:`numpy.random.Generator` built from the user's
seed and a *key* naming what is drawn (a stream tag and e.g. an identity and image
index). Streams are independent of the order in which images are produced, so an
image's bytes depend only on the seed and its key, never on global random state.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

#: Stream tags (first element of every key). Adding a tag never changes another stream.
TRAITS = 1        # per-identity appearance
IMAGE = 2         # per-image pose, framing, background, noise
SPLIT = 3         # id numbers and train/val/test assignment
SCENE = 4         # per-camera scene style
NAMES = 5         # file names (RegDB, LIP)
COVERAGE = 6      # which cameras see which identity (SYSU)
TRIAL = 7         # RegDB per-trial train/test split



def check_seed(seed: int) -> int:
    """Return ``seed`` as an int; negative seeds are refused (SeedSequence needs >= 0)."""
    if isinstance(seed, bool) or int(seed) != seed or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def layout_code(layout: str) -> int:
    """The layout's stream code: its reader's ``synth.stream`` (:mod:`vireid.data.registry`)."""
    from vireid.data import registry

    hook = registry.get(layout).synth
    if hook is None:
        raise ValueError(f"dataset {layout!r} has no synthetic layout")
    return int(hook.stream)


def rng_for(seed: int, layout: str, *key: int) -> np.random.Generator:
    """A generator for ``(layout, *key)`` under ``seed``: same inputs, same stream."""
    spawn_key: Tuple[int, ...] = (layout_code(layout),) + tuple(int(k) for k in key)
    return np.random.default_rng(np.random.SeedSequence(check_seed(seed), spawn_key=spawn_key))
