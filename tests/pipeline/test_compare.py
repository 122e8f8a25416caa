"""pipeline.compare and `vireid-prep compare`: a cache's joints against a
reference cache's, per modality, on hand-made keypoints."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator
from pipeline.heatmaps import HeatmapJob
from vireid.data.scan import scan
from vireid.cache.reader import CacheConfig, CacheError, HeatmapCache
from pipeline.compare import cache_agreement, describe_agreement
from vireid.pose.joints import JOINT_NAMES
from tests.data.trees import make_sysu

SMALL = CacheConfig(input_size=(32, 16), stride=4, sigma=2.0, shard_size=10)
MOVED = (0, 1, 2, 3)        # R_Ankle .. L_Hip: 3 source px to the right in IR (6 px stored; head ~2.7 px)
DROPPED = 10                # R_Wrist: not reported in IR


def _rows(moved: bool):
    rows = []
    for j in range(16):
        x = 1.0 + (j % 6) + (3.0 if moved and j in MOVED else 0.0)
        rows.append([x, 15.0 - j * 0.9, 0 if moved and j == DROPPED else 2])
    return rows


def _cache(root: Path, manifest, out: Path, distorted: bool, config: CacheConfig = SMALL) -> HeatmapCache:
    images = {r.path: _rows(distorted and r.modality == "ir") for r in manifest.records}
    side = root / SIDE_FILE
    side.write_text(json.dumps({"format": "vireid-keypoints/1", "joints": list(JOINT_NAMES), "images": images}))
    HeatmapJob(manifest, root, out, KeypointFileEstimator(side), config, jobs=1).run()
    return HeatmapCache(out)


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("agree")
    root = tmp / "SYSU"
    manifest = scan("sysu", root, spec=make_sysu(root))
    ref = _cache(root, manifest, tmp / "ref", distorted=False)
    est = _cache(root, manifest, tmp / "est", distorted=True)
    return tmp, root, manifest, ref, est


def test_agreement_per_modality_by_hand(caches):
    _, _, manifest, ref, est = caches
    result, matched = cache_agreement(est, ref)
    assert matched == len(manifest.records)
    n_rgb = sum(r.modality == "rgb" for r in manifest.records)
    assert result["rgb"].average == 100.0 and result["rgb"].images == n_rgb
    # IR: of LIP's 14 averaged joints, the 4 moved ones and the unreported one are wrong
    assert result["ir"].average == pytest.approx(100 * 9 / 14)
    assert result["ir"].per_joint[DROPPED] == 0 and result["ir"].per_joint[0] == 0
    assert result["ir"].per_joint[9] == 100
    assert describe_agreement(result).startswith(f"PCKh@0.5 RGB 100.0% ({n_rgb} images")
    same, _ = cache_agreement(ref, ref)
    assert same["ir"].average == 100.0


def test_compare_command_and_its_errors(caches):
    tmp, root, manifest, ref, est = caches
    res = CliRunner().invoke(cli, ["compare", str(est.root), "--reference", str(ref.root)])
    assert res.exit_code == 0, res.output
    assert "RGB 100.0%" in res.output and "IR 64.3%" in res.output and f"({len(manifest.records)} images" in res.output
    other = _cache(root, manifest, tmp / "big", distorted=False,
                   config=CacheConfig(input_size=(64, 32), stride=4, sigma=2.0, shard_size=10))
    with pytest.raises(CacheError, match="one input size"):
        cache_agreement(other, ref)
    res = CliRunner().invoke(cli, ["compare", str(other.root), "--reference", str(ref.root)])
    assert res.exit_code == 1 and "one input size" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["compare", str(tmp / "nope"), "--reference", str(ref.root)])
    assert res.exit_code == 1 and "no such cache folder" in res.output
