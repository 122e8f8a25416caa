"""Reports: atomic JSON round trip, Markdown table, PNG plots."""
from __future__ import annotations

import os

import matplotlib.image as mpimg
import numpy as np
import pytest

from vireid.evaluation.metrics import RankMetrics, aggregate_trials
from vireid.evaluation.report import (
    markdown_table,
    plot_cmc,
    plot_ranking,
    read_results_json,
    table_entry,
    write_results_json,
)


def _metrics(r1: float, mAP: float) -> RankMetrics:
    cmc = np.clip(np.linspace(r1, r1 + 0.19, 20), 0, 1)
    return RankMetrics(cmc=cmc, cmc_standard=cmc, mAP=mAP, mINP=mAP / 2, num_valid_queries=3, num_queries=4)


def test_json_round_trip_with_numpy_and_dataclasses(tmp_path):
    m = _metrics(0.5, 0.4)
    payload = {"sysu": {"all": m}, "n": np.int64(7), "x": np.float32(0.25), "curve": np.arange(3)}
    path = write_results_json(tmp_path / "sub" / "results.json", payload)
    back = read_results_json(path)
    assert back["n"] == 7 and back["x"] == 0.25 and back["curve"] == [0, 1, 2]
    assert back["sysu"]["all"]["mAP"] == 0.4
    assert back["sysu"]["all"]["cmc"] == pytest.approx(m.cmc.tolist())
    assert os.listdir(tmp_path / "sub") == ["results.json"]  # no temporary file left


def test_json_overwrite_is_atomic_on_failure(tmp_path):
    path = write_results_json(tmp_path / "r.json", {"a": 1})
    with pytest.raises(ValueError, match="NaN"):
        write_results_json(path, {"a": float("nan")})
    with pytest.raises(TypeError, match="object"):
        write_results_json(path, {"a": object()})
    assert read_results_json(path) == {"a": 1}
    assert os.listdir(tmp_path) == ["r.json"]


def test_markdown_table_sysu_layout():
    results = {
        "f_ID": {"All-search": table_entry(_metrics(0.6123, 0.5)), "Indoor-search": table_entry(_metrics(0.7, 0.65))},
        "f_ALL": {"All-search": {"R1": 0.71064, "R10": 0.9, "R20": 0.955, "mAP": 0.66666, "mINP": 0.5}},
    }
    text = markdown_table(results, "sysu")
    lines = text.strip().splitlines()
    assert lines[0].startswith("| Method | All-search R1 | All-search R10 | All-search R20 | All-search mAP")
    assert "Indoor-search mINP |" in lines[0]
    assert len(lines) == 4 and len(lines[0].split("|")) == len(lines[2].split("|"))
    assert lines[2].startswith("| f_ID | 61.23 | ")
    assert lines[3] == "| f_ALL | 71.06 | 90.00 | 95.50 | 66.67 | 50.00 | - | - | - | - | - |"


def test_markdown_table_regdb_and_trial_summary():
    summary = aggregate_trials([_metrics(0.5, 0.4), _metrics(0.7, 0.6)])
    text = markdown_table({"Ours": {"Visible-to-Thermal": table_entry(summary)}}, "regdb", percent=False, digits=3)
    assert "Visible-to-Thermal R1" in text and "Thermal-to-Visible mINP" in text
    assert "| Ours | 0.600 |" in text
    with pytest.raises(ValueError, match="settings"):
        markdown_table({"Ours": {"All-search": {}}}, "regdb")
    with pytest.raises(ValueError, match="dataset"):
        markdown_table({"Ours": {}}, "market")


def test_plot_cmc_png(tmp_path):
    path = plot_cmc(tmp_path / "cmc.png", {"f_ID": _metrics(0.5, 0.4).cmc, "f_ALL": _metrics(0.6, 0.5).cmc})
    image = mpimg.imread(path)
    assert image.shape[:2] == (450, 600)
    with pytest.raises(ValueError, match="fractions"):
        plot_cmc(tmp_path / "bad.png", {"x": [0.5, 50.0]})


def test_plot_ranking_png_frames(tmp_path):
    rng = np.random.default_rng(0)
    queries = [rng.integers(0, 255, (60, 30, 3), dtype=np.uint8) for _ in range(2)]
    gallery = [[rng.integers(0, 255, (70, 40, 3), dtype=np.uint8) for _ in range(10)] for _ in range(2)]
    mask = np.zeros((2, 10), bool)
    mask[0, 0] = True
    mask[1, 3] = True
    path = plot_ranking(tmp_path / "rank.png", queries, gallery, mask, cell_size=(64, 32), border=3, gap=10)
    image = (mpimg.imread(path)[..., :3] * 255).round().astype(np.uint8)
    cell_h, cell_w = 64 + 6 + 4, 32 + 6 + 4
    assert image.shape == (2 * cell_h + 4, 11 * cell_w + 10 + 4, 3)

    def frame_pixel(row: int, col: int) -> tuple:
        top = 2 + row * cell_h + 2
        left = 2 + col * cell_w + (10 if col > 0 else 0) + 2
        return tuple(image[top + 1, left + 1])

    assert frame_pixel(0, 1) == (0, 170, 0)  # rank-1 of query 0: correct
    assert frame_pixel(0, 2) == (220, 0, 0)
    assert frame_pixel(1, 4) == (0, 170, 0)  # rank-4 of query 1: correct
    assert frame_pixel(1, 1) == (220, 0, 0)
    assert frame_pixel(1, 0) == (128, 128, 128)  # the query


def test_plot_ranking_errors(tmp_path):
    img = np.zeros((8, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="correct_mask"):
        plot_ranking(tmp_path / "r.png", [img], [[img, img]], np.array([[True]]))
    with pytest.raises(ValueError, match="uint8"):
        plot_ranking(tmp_path / "r.png", [img.astype(float)], [[img]], np.array([[True]]))
    with pytest.raises(ValueError, match="rows"):
        plot_ranking(tmp_path / "r.png", [img], [[img], [img]], np.array([[True]]))


def test_plot_ranking_scores_labels_and_unknown_matches(tmp_path):
    """With scores / labels each row gains a caption strip; unknown matches are framed grey."""
    rng = np.random.default_rng(1)
    queries = [rng.integers(0, 255, (60, 30, 3), dtype=np.uint8)]
    gallery = [[rng.integers(0, 255, (70, 40, 3), dtype=np.uint8) for _ in range(3)]]
    mask = np.array([[True, False, False]])
    known = np.array([[True, True, False]])
    path = plot_ranking(tmp_path / "r.png", queries, gallery, mask, cell_size=(64, 32), border=3, gap=10,
                        scores=[[0.91, 0.5, 0.25]], query_labels=["IR id 7"], known_mask=known)
    image = (mpimg.imread(path)[..., :3] * 255).round().astype(np.uint8)
    cell_h, cell_w = 64 + 6 + 4 + 16, 32 + 6 + 4
    assert image.shape == (cell_h + 4, 4 * cell_w + 10 + 4, 3)
    left = [2 + c * cell_w + (10 if c > 0 else 0) + 2 for c in range(4)]
    assert [tuple(image[5, x + 1]) for x in left] == [(128, 128, 128), (0, 170, 0), (220, 0, 0), (128, 128, 128)]
    # the captions put dark text under every cell, nothing under a plain plot
    strip = image[2 + 2 + 64 + 6: 2 + cell_h - 2]
    for x in left:
        assert strip[:, x:x + cell_w - 4].min() < 100
    with pytest.raises(ValueError, match="scores must have shape"):
        plot_ranking(tmp_path / "x.png", queries, gallery, mask, scores=[[0.1]])
    with pytest.raises(ValueError, match="known_mask"):
        plot_ranking(tmp_path / "x.png", queries, gallery, mask, known_mask=np.ones((1, 2), bool))
