"""A tiny *trained* checkpoint on a synthetic SYSU-MM01 tree, shared by the inference tests:
8 identities, two images per camera, the 96x48 heatmap cache of tests/engine, ResNet-18
with narrow heads trained 2 steps (tests/engine/test_trainer.py's TINY preset)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engine.test_eval_cli import _cache
from tests.engine.test_trainer import tiny_config
from vireid.data.manifest import Manifest


@dataclass(frozen=True)
class Trained:
    root: Path            # the synthetic SYSU-MM01 tree
    cache: Path           # its heatmap cache (96x48 crops)
    manifest: Manifest
    checkpoint: Path      # RUN/last.pt after training


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    from vireid.engine.trainer import train

    tmp = tmp_path_factory.mktemp("inference")
    manifest = _cache(tmp / "SYSU-MM01", "sysu", tmp / "cache", images_per_camera=2)
    res = train(tiny_config("epochs=1", "data.batches_per_epoch=2", "data.holdout=null"), tmp / "cache", tmp / "run")
    return Trained(tmp / "SYSU-MM01", tmp / "cache", manifest, res.last)
