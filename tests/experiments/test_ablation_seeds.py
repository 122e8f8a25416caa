"""Table IV with error bars (vireid.experiments.ablation_seeds): seeds, aggregation, table, wiring."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vireid.experiments import ablation as ab
from vireid.experiments import ablation_seeds as abs_


def _row(r1: float, m: float, comps=(True, True, True)) -> dict:
    feats = {"f_ID": {"R1": r1, "mAP": m, "mINP": 0.0}, "f_ALL": {"R1": r1 + 0.01, "mAP": m + 0.01, "mINP": 0.0}}
    return {"setting": "All-search", "features": feats,
            "components": dict(zip(("use_pose_branch", "use_pose_loss", "use_hfc"), comps))}


def test_parse_seeds():
    assert abs_.parse_seeds("3") == [0, 1, 2]
    assert abs_.parse_seeds("0,5,7") == [0, 5, 7]
    for bad in ("0", "a", "1,1", "-1,2"):
        with pytest.raises(ValueError, match="seeds"):
            abs_.parse_seeds(bad)


def test_aggregate_and_table_by_hand():
    per_seed = {0: {"Baseline": _row(0.10, 0.20, (False, False, False)), "Full": _row(0.30, 0.40)},
                1: {"Baseline": _row(0.20, 0.30, (False, False, False)), "Full": _row(0.30, 0.50)},
                2: {"Baseline": _row(0.30, 0.40, (False, False, False)), "Full": _row(0.30, 0.60)}}
    rows = abs_.aggregate(per_seed)
    b = rows["Baseline"]["features"]["f_ID"]
    assert b["R1"]["mean"] == pytest.approx(0.2) and b["R1"]["std"] == pytest.approx(0.1)   # sample sd, ddof 1
    assert b["mAP"]["values"] == [0.2, 0.3, 0.4]
    full = rows["Full"]["features"]["f_ALL"]
    assert full["R1"]["std"] == pytest.approx(0.0, abs=1e-12) and full["mAP"]["mean"] == pytest.approx(0.51)
    md = abs_.seeds_table(rows, baseline="Baseline")
    assert md.startswith("All-search, 3 seeds (0, 1, 2), mean +- sample std (%):")
    assert "| Baseline |  |  |  | 20.00 +- 10.00 | 30.00 +- 10.00 | 21.00 +- 10.00 | 31.00 +- 10.00 | - |" in md
    # full f_ALL mAP 51 vs baseline 31, both sd 10 -> +20.00 (+2.0 sd)
    assert "| Full | x | x | x |" in md and "+20.00 (+2.0 sd)" in md
    assert abs_.mean_std([0.5]) == (0.5, 0.0)


def test_each_seed_runs_the_table_with_its_seed_into_its_folder(tmp_path, monkeypatch):
    calls = []

    def fake(base, cache, out, overrides=(), configs_dir=None, options=None, untrained_reference=True,
             rows=ab.ROWS):
        seed = int([o for o in overrides if o.startswith("seed=")][-1].split("=")[1])
        calls.append((Path(out).name, list(overrides)))
        return ab.AblationResult(rows={"Baseline": _row(0.1 * (seed + 1), 0.2, (False, False, False)),
                                       "+ PEB + L_pose + HFC (full)": _row(0.2, 0.3 + 0.1 * seed)})

    monkeypatch.setattr(abs_, "run_ablation", fake)
    res = abs_.run_ablation_seeds("base.yaml", "cache", tmp_path, [4, 9], overrides=["epochs=1"])
    assert calls == [("seed4", ["epochs=1", "seed=4"]), ("seed9", ["epochs=1", "seed=9"])]
    doc = json.loads((tmp_path / "ablation_seeds.json").read_text())
    assert doc["seeds"] == [4, 9] and [r["name"] for r in doc["rows"]] == list(res.rows)
    full = res.rows["+ PEB + L_pose + HFC (full)"]["features"]["f_ID"]["mAP"]
    assert full["values"] == pytest.approx([0.7, 1.2])
    assert full["std"] == pytest.approx(math.sqrt(2 * 0.25 ** 2))
    assert (tmp_path / "ablation_seeds.md").read_text() == res.markdown
    with pytest.raises(ValueError, match="at least one seed"):
        abs_.run_ablation_seeds("base.yaml", "cache", tmp_path, [])


def test_select_rows_keeps_table_order_and_names_the_known_rows():
    assert [slug for _, slug, _ in ab.select_rows("full, baseline")] == ["baseline", "full"]
    assert ab.select_rows("peb_pose")[0][0] == "+ PEB + L_pose"
    for bad in ("", "ful", "baseline,nope"):
        with pytest.raises(ValueError, match="baseline, peb, peb_pose, full"):
            ab.select_rows(bad)


def _val(epoch: int, m: float) -> dict:
    return {"kind": "val", "epoch": epoch, "step": 10 * epoch, "mAP": m}


def test_seed_band_by_hand():
    logs = {0: [{"kind": "step", "epoch": 1, "step": 1}, _val(20, 0.10), _val(40, 0.20), _val(60, 0.9)],
            1: [_val(20, 0.20), _val(40, 0.40)],
            2: [_val(20, 0.30), _val(40, 0.30)]}
    epochs, mean, sd = abs_.seed_band(logs)
    assert epochs == [20, 40]                       # epoch 60: only seed 0 validated there
    assert mean == pytest.approx([0.2, 0.3]) and sd == pytest.approx([0.1, 0.1])
    assert abs_.seed_band({0: [_val(20, 0.5)]}) == ([20], [0.5], [0.0])
    assert abs_.seed_band({0: [_val(20, 0.5)], 1: [{"kind": "step", "epoch": 1}]}) == ([], [], [])


def test_rows_reach_every_seed_and_the_figure_draws_them(tmp_path, monkeypatch):
    picked = ab.select_rows("baseline,full")
    seen = []

    def fake(base, cache, out, overrides=(), configs_dir=None, options=None, untrained_reference=True,
             rows=ab.ROWS):
        seen.append([slug for _, slug, _ in rows])
        seed = int(Path(out).name[4:])
        for name, slug, _ in rows:
            log = Path(out) / slug / "log.jsonl"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("".join(json.dumps(_val(e, 0.01 * e + seed / 100)) + "\n" for e in (10, 20)))
        return ab.AblationResult(rows={name: _row(0.1, 0.2 + seed / 10, (slug == "full",) * 3)
                                       for name, slug, _ in rows})

    monkeypatch.setattr(abs_, "run_ablation", fake)
    res = abs_.run_ablation_seeds("base.yaml", "cache", tmp_path, [0, 1], rows=picked)
    assert seen == [["baseline", "full"], ["baseline", "full"]]
    assert list(res.rows) == ["Baseline", "+ PEB + L_pose + HFC (full)"]
    png = tmp_path / "ablation_seeds.png"
    assert res.png_path == png and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_no_validation_records_no_figure(tmp_path, monkeypatch):
    monkeypatch.setattr(abs_, "run_ablation", lambda *a, **k: ab.AblationResult(rows={"Baseline": _row(0.1, 0.2)}))
    res = abs_.run_ablation_seeds("base.yaml", "cache", tmp_path, [0], rows=ab.select_rows("baseline"))
    assert res.png_path is None and not (tmp_path / "ablation_seeds.png").exists()


def test_the_script_passes_rows_and_refuses_unknown_ones(tmp_path, monkeypatch, capsys):
    from tests.benchmarks.scripts import load_script

    script = load_script("ablation")
    got = {}

    def fake(base, cache, out, seeds, overrides=(), configs_dir=None, options=None, untrained_reference=True,
             rows=ab.ROWS):
        got.update(seeds=seeds, rows=[slug for _, slug, _ in rows], overrides=list(overrides))
        return abs_.SeedsResult(markdown="table")

    monkeypatch.setattr(script, "run_ablation_seeds", fake)
    assert script.main(["--cache", "c", "--out", str(tmp_path), "--seeds", "2", "--rows", "full,baseline",
                        "--set", "epochs=3", "--device", "cpu"]) == 0
    assert got == {"seeds": [0, 1], "rows": ["baseline", "full"], "overrides": ["epochs=3"]}
    with pytest.raises(SystemExit):
        script.main(["--cache", "c", "--out", str(tmp_path), "--rows", "pebb"])
    assert "--rows takes row names from baseline, peb, peb_pose, full" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--cache", "c", "--out", str(tmp_path), "--rows", "full", "--sweep", "k", "--values", "1"])
