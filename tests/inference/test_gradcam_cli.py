"""vireid-gradcam on the tiny trained checkpoint (full model) and an untrained baseline."""
from __future__ import annotations

import dataclasses
import json

import cv2
import pytest
import torch
from click.testing import CliRunner

from tests.inference.helpers import assert_help_mentions
from vireid.cli.gradcam import cli
from vireid.cache.reader import HeatmapCache
from vireid.model.checkpoint import load_checkpoint, save_checkpoint
from vireid.inference.gradcam_figure import BORDER, GREY, HEADER, PAD, ROW_TITLE, figure_size
from vireid.model import ModelConfig, PoseVIReIDNet


def _baseline(path, trained, input_size=(96, 48)):
    torch.manual_seed(0)
    cfg = ModelConfig.ablation("baseline", backbone="resnet18", input_size=input_size, num_classes=4, stripe_dim=32)
    save_checkpoint(path, {"model": PoseVIReIDNet(cfg).state_dict(), "model_config": dataclasses.asdict(cfg),
                           "config": {}, "dataset": "sysu", "manifest_hash": trained.manifest.hash, "epoch": 0})
    return path


@pytest.fixture(scope="module")
def baseline(trained, tmp_path_factory):
    return _baseline(tmp_path_factory.mktemp("gradcam") / "base.pt", trained)


def _test_ids(trained):
    return sorted({r.pid for r in trained.manifest.records if r.split == "test"})


def test_help():
    assert_help_mentions(cli, "--checkpoint", "--baseline", "--cache", "--ids", "--score", "--layer", "sigmoid(F_P)",
                         "id_<pid>.png", "gradcam.json")


def test_baseline_and_full_pictures(trained, baseline, tmp_path):
    ids = _test_ids(trained)[:1]                     # one identity (the default --num 1 picks the first):
    out = tmp_path / "g"                             # each costs ~6 s on the loaded 2-core machine
    res = CliRunner().invoke(cli, ["--checkpoint", str(trained.checkpoint), "--baseline", str(baseline), "--cache",
                                   str(trained.cache), "--num", "1", "--cell-height", "96", "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "gradcam.json").read_text())
    assert [r["pid"] for r in doc["identities"]] == ids and doc["layer"] == "f_id"
    height, width = figure_size(2, 96, 48)
    for rec in doc["identities"]:
        pic = cv2.imread(str(out / rec["png"]))
        assert pic.shape == (height, width, 3)
        assert set(rec["images"]) == {"rgb", "ir"}
        base, full = rec["models"]
        assert (base["role"], base["pose_branch"], full["role"], full["pose_branch"]) == \
               ("baseline", False, "full", True)
        for entry in (base, full):
            for mod in ("rgb", "ir"):
                # test identities are no training class; both modalities exist: the cross-modal cosine
                assert entry[mod]["score"] == "cross" and -1.0 <= entry[mod]["value"] <= 1.0
                assert 0 <= entry[mod]["cam_peak_yx"][0] < 96 and 0 <= entry[mod]["cam_peak_yx"][1] < 48
        lo, hi = full["rgb"]["mask_range"]
        assert base["rgb"]["mask_range"] is None and 0 < lo <= hi < 1
        # the baseline's (first row) mask cells are grey, the full model's (second row) are not
        y_base, y_full = BORDER + HEADER + ROW_TITLE, BORDER + HEADER + 2 * ROW_TITLE + 96 + PAD
        x_mask = BORDER + 2 * (48 + PAD)
        assert tuple(pic[y_base + 3, x_mask + 3]) == GREY
        assert tuple(pic[y_full + 3, x_mask + 3]) != GREY
        assert f"id {rec['pid']}" in res.output
        for entry in (base, full):
            for mod in ("rgb", "ir"):
                body = entry[mod]["body"]                    # the cache's keypoints give each crop a body box
                y0, x0, y1, x1 = body["box_yx"]
                assert 0 <= y0 < y1 <= 96 and 0 <= x0 < x1 <= 48
                assert body["area"] == pytest.approx((y1 - y0) * (x1 - x0) / (96 * 48))
                assert 0 <= body["cam_share"] <= 1 and body["lift"] == pytest.approx(body["cam_share"] / body["area"])
        assert "mask_contrast" in full["rgb"]["body"] and "mask_contrast" not in base["rgb"]["body"]
    # the summary: per model, the mean over the images shown, printed and written
    for role in ("baseline", "full"):
        got = doc["summary"][role]
        shares = [e[m]["body"]["cam_share"] for r in doc["identities"] for e in r["models"] if e["role"] == role
                  for m in ("rgb", "ir")]
        assert got["images"] == len(shares) and got["cam_share"] == pytest.approx(sum(shares) / len(shares))
        assert f"{role}: mean score {got['score']:.3f}; Grad-CAM mass on the body box {100 * got['cam_share']:.1f}%" \
            in res.output
    assert "pose mask on - off the body" in res.output.split("full: mean score")[1]


def test_one_checkpoint_logit_of_a_training_identity(trained, tmp_path):
    label_map = {int(k): int(v) for k, v in load_checkpoint(trained.checkpoint)["label_map"].items()}
    pid = max(label_map)
    res = CliRunner().invoke(cli, ["--checkpoint", str(trained.checkpoint), "--cache", str(trained.cache),
                                   "--split", "train", "--ids", str(pid), "--out", str(tmp_path / "one"),
                                   "--layer", "f_id2"])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "one" / "gradcam.json").read_text())
    rec = doc["identities"][0]
    assert rec["pid"] == pid and doc["split"] == "train" and doc["layer"] == "f_id2"
    pic = cv2.imread(str(tmp_path / "one" / rec["png"]))
    assert pic.shape == (*figure_size(1, 288, 144), 3)          # default cell height 288
    entry = rec["models"][0]
    assert entry["role"] == "last.pt" and entry["rgb"]["score"] == entry["ir"]["score"] == "logit"
    # the explained score is the sum of the stripe logits of the identity's class
    from vireid.inference.extractor import FeatureExtractor, ImageItem
    ex = FeatureExtractor(trained.checkpoint, device="cpu", feature="f_id", flip=False)
    cache = HeatmapCache(trained.cache)
    crop = cache.read_arrays(cache.index_of(rec["images"]["rgb"]))[0]
    seen = {}
    ex.model.reid_pcb.register_forward_hook(lambda m, i, o: seen.update(logits=o.logits))
    with torch.no_grad():
        ex.model(torch.from_numpy(ex.prepare(ImageItem(crop, 0))[0])[None], torch.tensor([0]))
    assert entry["rgb"]["value"] == pytest.approx(float(seen["logits"][0, :, label_map[pid]].sum()), rel=1e-5)
    # --score logit: only a training identity has a class; a test identity is refused by name
    res = CliRunner().invoke(cli, ["--checkpoint", str(trained.checkpoint), "--cache", str(trained.cache),
                                   "--score", "logit", "--out", str(tmp_path / "lg")])
    assert res.exit_code == 1 and "training class" in res.output and "Traceback" not in res.output


def test_errors(trained, baseline, tmp_path):
    def run(*args):
        res = CliRunner().invoke(cli, ["--cache", str(trained.cache), "--out", str(tmp_path / "e"), *args])
        assert res.exit_code != 0 and "Traceback" not in res.output
        return res.output

    ck = str(trained.checkpoint)
    out = run("--checkpoint", ck, "--ids", "999")
    assert "999 not a test identity" in out and str(_test_ids(trained)[0]) in out
    assert "not a train identity" in run("--checkpoint", ck, "--split", "train", "--ids", str(_test_ids(trained)[0]))
    assert "integers separated by commas" in run("--checkpoint", ck, "--ids", "1,x")
    missing = tmp_path / "nope.pt"
    assert f"{missing}: checkpoint not found" in run("--checkpoint", ck, "--baseline", str(missing))
    wrong = _baseline(tmp_path / "big.pt", trained, input_size=(128, 64))
    assert f"{wrong} was trained at 128x64" in run("--checkpoint", ck, "--baseline", str(wrong))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert str(junk) in run("--checkpoint", str(junk))
    assert "not a heatmap cache" in CliRunner().invoke(cli, ["--checkpoint", ck, "--cache", str(tmp_path),
                                                             "--out", str(tmp_path / "e")]).output
    assert not (tmp_path / "e").exists() or not list((tmp_path / "e").glob("*.png"))
