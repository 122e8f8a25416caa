"""Every paper and release preset trains stably from every documented start: 20 steps of
configs/{sysu,regdb,sysu_release,regdb_release}.yaml, shrunk only in batch (2 ids x 2 RGB +
2 IR) and input size (96x32, on a cache built at 96x32 with stride 4), from random weights
(``model.pretrained=null model.pose_init=null``) and from a GCCPM-layout LIP checkpoint
(the shared golden one, as ``model.pose_init``): every loss stays finite and the total falls.

Before the Refinement Module's random start took GCCPM's own initialisation
(:func:`vireid.model.init.gccpm_init`), the Xavier-initialised heatmap head started over SGD's
stability limit and ``sysu.yaml`` from random weights stopped with "loss 'pose' is inf" by
step 5."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator
from pipeline.heatmaps import HeatmapJob
from pipeline.synth import synthesize
from vireid.data.scan import scan
from vireid.data.shards import CacheConfig
from vireid.engine.config import load_config
from vireid.engine.runlog import read_log
from vireid.engine.trainer import train

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
HW = (96, 32)                                   # 6 ReID rows, 24x8 heatmaps at stride 4
STEPS = 20
SHRINK = [f"data.input_size=[{HW[0]}, {HW[1]}]", "data.num_ids=2", "data.num_per_modality=2", "data.workers=0",
          "device=cpu", "progress=false", "epochs=1", f"data.batches_per_epoch={STEPS}", "log_every=100"]
PRESETS = ["sysu.yaml", "regdb.yaml", "sysu_release.yaml", "regdb_release.yaml"]


def _cache(root: Path, layout: str) -> Path:
    per_camera = 2 if layout == "sysu" else 4
    synthesize(layout, root / layout, ids=4, seed=1, images_per_camera=per_camera)
    manifest = scan(layout, root / layout)
    HeatmapJob(manifest, root / layout, root / f"cache-{layout}", KeypointFileEstimator(root / layout / SIDE_FILE),
               CacheConfig(input_size=HW, stride=4, shard_size=64)).run()
    return root / f"cache-{layout}"


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> dict:
    """Tiny SYSU-MM01 (2 training ids) and RegDB (2 training ids per trial) caches at 96x32."""
    root = tmp_path_factory.mktemp("stability")
    return {"sysu": _cache(root, "sysu"), "regdb": _cache(root, "regdb")}


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: the 20 ResNet-50 steps cost ~20 s of CPU, not minutes of contended spinning."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _run(preset: str, start: list, caches: dict, out: Path) -> list:
    cfg = load_config(CONFIGS / preset, SHRINK + ["model.pretrained=null"] + start)
    train(cfg, caches[cfg.dataset], out)
    steps = [r for r in read_log(out / "log.jsonl") if r["kind"] == "step"]
    assert len(steps) == STEPS
    for s in steps:
        for name in ("id", "hctri", "pose", "kd", "total"):
            assert np.isfinite(s[name]), (preset, s["step"], name, s[name])
    first = np.mean([s["total"] for s in steps[:5]])
    last = np.mean([s["total"] for s in steps[-5:]])
    assert last < first, (preset, first, last, [round(s["total"], 2) for s in steps])
    return steps


@pytest.mark.parametrize("preset", PRESETS)
def test_trains_from_random_weights(preset, caches, tmp_path):
    _run(preset, ["model.pose_init=null"], caches, tmp_path / "run")


@pytest.mark.shared
@pytest.mark.parametrize("preset", PRESETS)
def test_trains_from_a_gccpm_checkpoint(preset, caches, golden_dir, tmp_path):
    _run(preset, [f"model.pose_init={golden_dir / 'lip_gccpm_2stage.pth'}"], caches, tmp_path / "run")
