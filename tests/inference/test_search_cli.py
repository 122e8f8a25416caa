"""vireid-search: IR query crops against an RGB feature file of the tiny trained model."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tests.inference.helpers import assert_help_mentions
from vireid.cli.extract import cli as extract_cli
from vireid.cli.search import cli
from vireid.evaluation.rerank import RerankConfig, rerank_features
from vireid.inference.extractor import FeatureExtractor
from vireid.inference.featurefile import FeatureFile


@pytest.fixture(scope="module")
def gallery(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "rgb.h5"
    res = CliRunner().invoke(extract_cli, ["--checkpoint", str(trained.checkpoint), "--manifest",
                                           str(trained.cache / "manifest.json"), "--split", "test", "--modality",
                                           "rgb", "--out", str(out), "--no-progress", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def queries(trained):
    return trained.manifest.select(split=["test"], modality="ir")[:2]


def test_help():
    assert_help_mentions(cli, "QUERIES", "--gallery", "--checkpoint", "--query-modality", "--query-pid", "--top-k",
                         "--rerank", "--k1", "--k2", "--lambda", "topk.json", "ranking.png")


def test_top_k_json_and_ranking_png(trained, gallery, queries, tmp_path):
    paths = [str(trained.root / r.path) for r in queries]
    args = [*paths, "--gallery", str(gallery), "--top-k", "4", "--out", str(tmp_path / "s"), "--device", "cpu"]
    for r in queries:
        args += ["--query-pid", str(r.pid)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "s" / "topk.json").read_text())
    ff = FeatureFile.load(gallery)
    # the independent ranking: the gallery's own features against the query features
    ex = FeatureExtractor(trained.checkpoint, device="cpu", feature=ff.meta["feature"], flip=ff.meta["flip"])
    sims = ex(paths, modality="ir") @ ff.features.T
    assert doc["ranked_by"] == "cosine similarity" and len(doc["queries"]) == 2
    for qi, q in enumerate(doc["queries"]):
        assert q["modality"] == "ir" and q["pid"] == queries[qi].pid     # auto: the other modality of an RGB file
        best = np.argsort(-sims[qi], kind="stable")[:4]
        assert [h["path"] for h in q["top"]] == [ff.paths[g] for g in best]
        np.testing.assert_allclose([h["similarity"] for h in q["top"]], sims[qi][best], atol=1e-5)
        assert [h["correct"] for h in q["top"]] == [bool(ff.pid[g] == queries[qi].pid) for g in best]
    png = cv2.imread(str(tmp_path / "s" / "ranking.png"))
    # plot_ranking geometry with captions: rows of 128+2*4+4+16 px, columns of 64+2*4+4 px, 16 px gap
    assert png.shape == (2 * 156 + 4, 5 * 76 + 20, 3)
    # frames: green for a correct match, red for a wrong one (BGR in OpenCV)
    first = doc["queries"][0]["top"][0]
    frame = png[2 + 2 + 1, 2 + 76 + 16 + 2 + 1]                            # row 0, first gallery cell's border
    assert tuple(frame) == ((0, 170, 0) if first["correct"] else (0, 0, 220))
    assert "(IR, id %d):" % queries[0].pid in res.output


def test_rerank_and_unknown_identities(trained, gallery, queries, tmp_path):
    paths = [str(trained.root / r.path) for r in queries]
    res = CliRunner().invoke(cli, [*paths, "--gallery", str(gallery), "--top-k", "3", "--rerank", "--k1", "4",
                                   "--k2", "2", "--lambda", "0.4", "--out", str(tmp_path / "r"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "r" / "topk.json").read_text())
    assert doc["rerank"] == {"k1": 4, "k2": 2, "lambda": 0.4} and doc["ranked_by"] == "re-ranked distance"
    ff = FeatureFile.load(gallery)
    ex = FeatureExtractor(trained.checkpoint, device="cpu", feature=ff.meta["feature"], flip=ff.meta["flip"])
    d = rerank_features(ex(paths, modality="ir"), ff.features, RerankConfig(4, 2, 0.4))
    for qi, q in enumerate(doc["queries"]):
        assert q["pid"] is None and all(h["correct"] is None for h in q["top"])
        best = np.argsort(d[qi], kind="stable")[:3]
        assert [h["path"] for h in q["top"]] == [ff.paths[g] for g in best]
        np.testing.assert_allclose([h["distance"] for h in q["top"]], d[qi][best], atol=1e-5)
    png = cv2.imread(str(tmp_path / "r" / "ranking.png"))
    assert tuple(png[2 + 2 + 1, 2 + 76 + 16 + 2 + 1]) == (128, 128, 128)      # unknown: grey frame


def test_errors(trained, gallery, queries, tmp_path):
    q = str(trained.root / queries[0].path)
    res = CliRunner().invoke(cli, [q, "--gallery", str(tmp_path / "none.h5"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "feature file not found" in res.output
    res = CliRunner().invoke(cli, [q, "--gallery", str(gallery), "--query-pid", "1", "--query-pid", "2",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "--query-pid given 2 times for 1 query images" in res.output
    from vireid.model.checkpoint import load_checkpoint, save_checkpoint

    data = load_checkpoint(trained.checkpoint)
    data["epoch"] = 99                                   # same weights, another file: another sha256
    save_checkpoint(tmp_path / "other.pt", data)
    res = CliRunner().invoke(cli, [q, "--gallery", str(gallery), "--checkpoint", str(tmp_path / "other.pt"),
                                   "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert res.exit_code == 1 and "checkpoint_sha256 differs" in res.output and "Traceback" not in res.output
