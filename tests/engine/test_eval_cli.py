"""vireid-eval end to end on a tiny synthetic SYSU cache and an untrained ResNet-18 checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator
from pipeline.heatmaps import HeatmapJob
from pipeline.synth import synthesize
from vireid.cli.evaluate import cli
from vireid.data.scan import scan
from vireid.cache.reader import CacheConfig
from vireid.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vireid.model import ModelConfig, PoseVIReIDNet

HW = (96, 48)


def _cache(root: Path, layout: str, out: Path, **kw):
    synthesize(layout, root, ids=kw.pop("ids", 8), seed=1, **kw)
    manifest = scan(layout, root)
    HeatmapJob(manifest, root, out, KeypointFileEstimator(root / SIDE_FILE),
               CacheConfig(input_size=HW, stride=4, sigma=3.0, shard_size=64)).run()
    return manifest


def _checkpoint(path: Path, manifest, dataset: str, trial=None, input_size=HW, **model_kw):
    torch.manual_seed(0)
    cfg = ModelConfig(backbone="resnet18", input_size=input_size, num_classes=4, **model_kw)
    model = PoseVIReIDNet(cfg)
    import dataclasses
    save_checkpoint(path, {"model": model.state_dict(), "model_config": dataclasses.asdict(cfg), "config": {},
                           "dataset": dataset, "trial": trial, "manifest_hash": manifest.hash, "epoch": 0})


@pytest.fixture(scope="module")
def sysu(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    manifest = _cache(tmp / "SYSU", "sysu", tmp / "cache")
    _checkpoint(tmp / "run" / "last.pt", manifest, "sysu")
    return tmp


def test_joint_map_models_report_pose_branch_pckh_and_draw_the_pose_picture(sysu):
    manifest = scan("sysu", sysu / "SYSU")
    _checkpoint(sysu / "run16" / "last.pt", manifest, "sysu", heatmap_channels=16)
    out = sysu / "ev16"
    res = CliRunner().invoke(cli, ["--checkpoint", str(sysu / "run16" / "last.pt"), "--cache", str(sysu / "cache"),
                                   "--trials", "1", "--mode", "all", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    pose = json.loads((out / "results.json").read_text())["pose_branch"]["pckh@0.5"]
    assert set(pose) == {"RGB", "IR"} and all(0 <= v["average"] <= 100 for v in pose.values())
    assert f"PCKh@0.5 against the cached targets on the test images: RGB {pose['RGB']['average']:.1f}%" in res.output
    png = cv2.imread(str(out / "pose.png"))
    # 2 test ids with both modalities at most 4: one row each = (label 18 + 2 x 96*2 + gap 6) px;
    # 4 columns of 48*2 px
    assert png is not None and png.shape[1] == 4 * 2 * HW[1] and png.shape[0] % (18 + 4 * HW[0] + 6) == 0


def test_sysu_outputs(sysu):
    out = sysu / "ev"
    res = CliRunner().invoke(cli, ["--checkpoint", str(sysu / "run" / "last.pt"), "--cache", str(sysu / "cache"),
                                   "--trials", "2", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "results.json").read_text())
    assert set(doc["results"]) == {"All-search", "Indoor-search"}
    allr = doc["results"]["All-search"]
    assert allr["trials"] == [0, 1] and set(allr["features"]) == {"f_ID", "f_ALL"}
    assert len(allr["features"]["f_ID"]["per_trial"]) == 2
    assert 0 <= allr["features"]["f_ALL"]["mean"]["mAP"] <= 1
    assert "pose_branch" not in doc and not (out / "pose.png").exists()    # one merged map: no joints
    assert doc["manifest_hash"] and len(doc["checkpoint"]["sha256"]) == 64
    md = (out / "results.md").read_text()
    assert md.startswith("| Method | All-search R1") and "| f_ID |" in md and "| f_ALL |" in md
    assert cv2.imread(str(out / "cmc.png")).shape == (450, 600, 3)
    rank = cv2.imread(str(out / "ranking.png"))
    from vireid.data.manifest import Manifest
    from vireid.evaluation.testing import sysu_sets
    sets = sysu_sets(Manifest.load(sysu / "cache" / "manifest.json"), "all", "single", trials=[0])
    n, k = min(6, len(sets.query)), min(10, len(sets.galleries[0]))
    # plot_ranking geometry: rows of 128+2*4+4 px, columns of 64+2*4+4 px, a 16 px gap, 4 px margin
    assert rank.shape == (n * 140 + 4, (k + 1) * 76 + 20, 3)


def test_regdb_both_directions(tmp_path):
    manifest = _cache(tmp_path / "RegDB", "regdb", tmp_path / "cache", ids=6, images_per_camera=2)
    _checkpoint(tmp_path / "last.pt", manifest, "regdb", trial=3)
    res = CliRunner().invoke(cli, ["--checkpoint", str(tmp_path / "last.pt"), "--cache", str(tmp_path / "cache"),
                                   "--out", str(tmp_path / "ev"), "--no-progress", "--flip"])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert set(doc["results"]) == {"Visible-to-Thermal", "Thermal-to-Visible"}
    assert doc["results"]["Visible-to-Thermal"]["trials"] == [3] and doc["protocol"]["flip"] is True


def test_clear_errors(sysu, tmp_path):
    res = CliRunner().invoke(cli, ["--checkpoint", str(tmp_path / "absent.pt"), "--cache", str(sysu / "cache")])
    assert res.exit_code == 1 and "checkpoint not found" in res.output
    other = tmp_path / "other.pt"
    from vireid.data.manifest import Manifest
    manifest = Manifest.load(sysu / "cache" / "manifest.json")
    _checkpoint(other, manifest, "sysu", input_size=(128, 64))
    res = CliRunner().invoke(cli, ["--checkpoint", str(other), "--cache", str(sysu / "cache"), "--no-progress"])
    assert res.exit_code == 1 and "trained at 128x64" in res.output and "96x48" in res.output
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a vireid-checkpoint/1"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_untrained_reference_and_compare(sysu, tmp_path):
    """--untrained rebuilds the network with the run's seed and loads nothing: for the fixture's
    checkpoint (seed-0 random weights, config seed 0) it gives exactly the checkpoint's numbers;
    --compare divides this evaluation's mAP by an earlier one's and records it."""
    ck = sysu / "run" / "last.pt"
    base = ["--cache", str(sysu / "cache"), "--trials", "2", "--no-progress"]
    res = CliRunner().invoke(cli, ["--checkpoint", str(ck), *base, "--untrained", "--out", str(tmp_path / "u")])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("Untrained reference")
    u = json.loads((tmp_path / "u" / "results.json").read_text())
    assert u["checkpoint"]["weights"] == "untrained" and "no weights loaded" in u["checkpoint"]["note"]
    res = CliRunner().invoke(cli, ["--checkpoint", str(ck), *base, "--out", str(tmp_path / "t")])
    t = json.loads((tmp_path / "t" / "results.json").read_text())
    assert t["checkpoint"]["weights"] == "trained"
    assert t["results"]["All-search"]["features"]["f_ALL"]["mean"] == \
        u["results"]["All-search"]["features"]["f_ALL"]["mean"]

    # another network (seed 5) against the untrained reference
    data = load_checkpoint(ck)
    torch.manual_seed(5)
    from vireid.model.config import model_config_from
    data["model"] = PoseVIReIDNet(model_config_from(data)).state_dict()
    other = tmp_path / "other.pt"
    save_checkpoint(other, data)
    res = CliRunner().invoke(cli, ["--checkpoint", str(other), *base, "--out", str(tmp_path / "o"),
                                   "--compare", str(tmp_path / "u" / "results.json")])
    assert res.exit_code == 0, res.output
    o = json.loads((tmp_path / "o" / "results.json").read_text())
    ratios = o["compare"]["mAP_ratio"]
    assert o["compare"]["baseline_weights"] == "untrained" and set(ratios) == {"All-search", "Indoor-search"}
    for setting, by_feat in ratios.items():
        for feat, r in by_feat.items():
            m = o["results"][setting]["features"][feat]["mean"]["mAP"]
            b = u["results"][setting]["features"][feat]["mean"]["mAP"]
            assert r["mAP"] == m and r["baseline_mAP"] == b and r["ratio"] == pytest.approx(m / b)
    assert "| All-search | f_ALL |" in res.output and f"{ratios['All-search']['f_ALL']['ratio']:.2f}x" in res.output
    assert "lowest mAP ratio" in res.output
    assert "mAP against" in (tmp_path / "o" / "results.md").read_text()


def test_compare_refuses_another_protocol(sysu, tmp_path):
    ck = str(sysu / "run" / "last.pt")
    base = ["--checkpoint", ck, "--cache", str(sysu / "cache"), "--no-progress"]
    res = CliRunner().invoke(cli, [*base, "--trials", "1", "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, [*base, "--trials", "2", "--out", str(tmp_path / "b"),
                                   "--compare", str(tmp_path / "a" / "results.json")])
    assert res.exit_code == 1 and "different trials" in res.output and "a/results.json" in res.output
    res = CliRunner().invoke(cli, [*base, "--compare", str(tmp_path / "absent.json")])
    assert res.exit_code == 1 and "absent.json: results file not found" in res.output
    (tmp_path / "bad.json").write_text("{not json")
    res = CliRunner().invoke(cli, [*base, "--compare", str(tmp_path / "bad.json")])
    assert res.exit_code == 1 and "bad.json: not a readable results.json" in res.output


def test_read_only_out_is_one_line_before_evaluating(sysu, tmp_path, monkeypatch):
    """Drill (issue 21): with a read-only --out, vireid-eval computed the whole evaluation and
    then died with a PermissionError traceback, its results lost."""
    import vireid.evaluation.testing
    from tests.fs import one_line, read_only

    def refuse(*args, **kwargs):
        raise AssertionError("evaluated although --out is not writable")

    monkeypatch.setattr(vireid.evaluation.testing, "evaluate_model", refuse)
    with read_only(tmp_path / "ro") as ro:
        res = CliRunner().invoke(cli, ["--checkpoint", str(sysu / "run" / "last.pt"), "--cache", str(sysu / "cache"),
                                       "--trials", "1", "--out", str(ro / "ev"), "--no-progress"])
    assert res.exit_code == 1, repr(res.exception)
    line = one_line(res.output)
    assert str(ro / "ev") in line and "not writable" in line


def test_test_ids_without_queries_are_counted(tmp_path):
    """Drill (issue 21): a test identity with no IR image was evaluated as gallery-only without a word."""
    import shutil

    from vireid.data.manifest import Manifest

    root = tmp_path / "SYSU"
    synthesize("sysu", root, ids=8, seed=1, images_per_camera=1)
    test_ids = sorted(scan("sysu", root).splits["id_lists"]["test"])
    lonely = test_ids[0]
    for cam in ("cam3", "cam6"):                                   # SYSU-MM01's IR (query) cameras
        shutil.rmtree(root / cam / f"{lonely:04d}", ignore_errors=True)
    manifest = scan("sysu", root, allow_partial=True)
    HeatmapJob(manifest, root, tmp_path / "cache", KeypointFileEstimator(root / SIDE_FILE),
               CacheConfig(input_size=HW, stride=4, sigma=3.0, shard_size=64)).run()
    _checkpoint(tmp_path / "last.pt", Manifest.load(tmp_path / "cache" / "manifest.json"), "sysu")
    res = CliRunner().invoke(cli, ["--checkpoint", str(tmp_path / "last.pt"), "--cache", str(tmp_path / "cache"),
                                   "--trials", "1", "--mode", "all", "--out", str(tmp_path / "ev"), "--no-progress"])
    assert res.exit_code == 0, res.output
    line = f"All-search: 1 of {len(test_ids)} test identities have no query image"
    assert line in res.output and f"{lonely:04d}" in res.output
    doc = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert doc["results"]["All-search"]["ids_without_queries"] == [lonely]


@pytest.mark.parametrize("option", ["--checkpoint", "--cache", "--compare"])
def test_a_path_that_does_not_exist_is_one_line(sysu, tmp_path, option):
    from tests.fs import one_line

    args = {"--checkpoint": str(sysu / "run" / "last.pt"), "--cache": str(sysu / "cache")}
    args[option] = str(tmp_path / "nope")
    res = CliRunner().invoke(cli, [a for kv in args.items() for a in kv] + ["--trials", "1", "--out",
                                                                            str(tmp_path / "ev"), "--no-progress"])
    assert res.exit_code == 1, repr(res.exception)
    assert str(tmp_path / "nope") in one_line(res.output)


def test_full_disk_is_one_line_naming_the_file(sysu, tmp_path, monkeypatch):
    from tests.fs import disk_full, one_line

    disk_full(monkeypatch)
    res = CliRunner().invoke(cli, ["--checkpoint", str(sysu / "run" / "last.pt"), "--cache", str(sysu / "cache"),
                                   "--trials", "1", "--out", str(tmp_path / "ev"), "--no-progress"])
    assert res.exit_code == 1, repr(res.exception)
    assert one_line(res.output) == f"Error: {tmp_path / 'ev' / 'results.json'}: cannot write: no space left on the device"
    assert list((tmp_path / "ev").iterdir()) == []


def test_rerank_is_reported_beside_the_plain_results(sysu, tmp_path):
    """--rerank keeps every plain number and key, adds "reranked" per setting (the metrics of
    k-reciprocal re-ranked cosine distances, recomputed here for one trial) and table rows."""
    from vireid.data.manifest import Manifest
    from vireid.cache.reader import HeatmapCache
    from vireid.model.checkpoint import build_model_from_checkpoint
    from vireid.evaluation.testing import sysu_sets
    from vireid.evaluation.features import extract_features
    from vireid.evaluation import sysu_metrics
    from vireid.evaluation.rerank import RerankConfig, rerank_features

    ck = str(sysu / "run" / "last.pt")
    base = ["--checkpoint", ck, "--cache", str(sysu / "cache"), "--trials", "2", "--no-progress", "--mode", "all"]
    assert CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "plain")]).exit_code == 0
    res = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "re"), "--rerank", "--k1", "8", "--k2", "3"])
    assert res.exit_code == 0, res.output
    plain = json.loads((tmp_path / "plain" / "results.json").read_text())
    re = json.loads((tmp_path / "re" / "results.json").read_text())
    assert re["protocol"]["rerank"] == {"k1": 8, "k2": 3, "lambda": 0.3} and "rerank" not in plain["protocol"]
    block = re["results"]["All-search"]
    assert block["features"] == plain["results"]["All-search"]["features"]
    assert set(block) == {"trials", "ids_without_queries", "features", "reranked"}
    assert set(block["reranked"]) == {"f_ID", "f_ALL"}

    manifest = Manifest.load(sysu / "cache" / "manifest.json")
    sets = sysu_sets(manifest, "all", "single", trials=[0])
    cache = HeatmapCache(sysu / "cache")
    model, _ = build_model_from_checkpoint(ck)
    query, gallery = sets.query, sets.galleries[0]
    feats = extract_features(model, cache, [cache.index_of(s.path) for s in query + gallery])["f_all"]
    d = rerank_features(feats[:len(query)], feats[len(query):], RerankConfig(8, 3, 0.3))
    direct = sysu_metrics(d, np.array([s.pid for s in query]), np.array([s.pid for s in gallery]),
                          np.array([s.cam for s in query]), np.array([s.cam for s in gallery]))
    first = block["reranked"]["f_ALL"]["per_trial"][0]
    assert first["mAP"] == pytest.approx(direct.mAP, abs=1e-9) and first["R1"] == pytest.approx(direct.cmc[0])
    md = (tmp_path / "re" / "results.md").read_text()
    assert "| f_ALL re-ranked |" in md and "| f_ID re-ranked |" in md and "| f_ALL |" in md
