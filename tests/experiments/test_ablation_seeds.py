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


def test_rows_with_fewer_seeds_name_them_and_one_seed_shows_no_spread():
    per_seed = {0: {"Baseline": _row(0.10, 0.20, (False, False, False)), "Full": _row(0.30, 0.40),
                    "+ PEB": _row(0.20, 0.34, (True, False, False)), "+ PEB + L_pose": _row(0.25, 0.35, (True, True, False))},
                1: {"Baseline": _row(0.20, 0.30, (False, False, False)), "Full": _row(0.30, 0.50),
                    "+ PEB": _row(0.20, 0.44, (True, False, False))},
                2: {"Baseline": _row(0.30, 0.40, (False, False, False)), "Full": _row(0.30, 0.60)}}
    md = abs_.seeds_table(abs_.aggregate(per_seed), baseline="Baseline")
    assert md.startswith("All-search, mean +- sample std over the seeds each row names (%):")
    assert "| Baseline (seeds 0, 1, 2) |  |  |  | 20.00 +- 10.00 |" in md
    # + PEB: f_ALL mAP 35, 45 -> 40 +- 7.07; baseline 31 +- 10 -> +9.00, pooled sqrt((50 + 100) / 2) = 8.66
    assert "| + PEB (seeds 0, 1) | x |  |  | 20.00 +- 0.00 | 39.00 +- 7.07 | 21.00 +- 0.00 | 40.00 +- 7.07 | +9.00 (+1.0 sd) |" in md
    # one seed: the value alone, the difference without a pooled sd
    assert "| + PEB + L_pose (seed 0) | x | x |  | 25.00 | 35.00 | 26.00 | 36.00 | +5.00 |" in md


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


def _evaluated(out: Path, seed: int, slug: str, m: float, comps=(True, True, True), epochs: int = 240,
               pose_init=None, manifest: str = "h1") -> Path:
    """A finished run's eval/results.json, as run_rows writes it (only the keys the table reads)."""
    model = dict(zip(ab.COMPONENTS, comps), pose_init=pose_init if comps[0] else None)
    metrics = lambda v: {"mean": {"R1": v / 2, "mAP": v, "mINP": v / 4}, "std": {"R1": 0.0, "mAP": 0.0, "mINP": 0.0}}
    payload = {"config": {"seed": seed, "epochs": epochs, "device": "cpu", "model": model},
               "manifest_hash": manifest, "protocol": {"dataset": "sysu"},
               "results": {"All-search": {"features": {"f_ID": metrics(m), "f_ALL": metrics(m + 0.01)}}}}
    path = out / f"seed{seed}" / slug / "eval" / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))
    return path


def test_finished_runs_gather_rows_run_apart_and_leave_out_the_unfinished(tmp_path):
    for seed, (b, f) in enumerate([(0.20, 0.40), (0.30, 0.50), (0.40, 0.60)]):
        _evaluated(tmp_path, seed, "baseline", b, (False, False, False))
        _evaluated(tmp_path, seed, "full", f, pose_init="lip.pth")
    _evaluated(tmp_path, 0, "peb", 0.34, (True, False, False), pose_init="lip.pth")
    _evaluated(tmp_path, 1, "peb", 0.44, (True, False, False), pose_init="lip.pth")
    (tmp_path / "seed2" / "peb").mkdir()                  # started, not evaluated: left out
    per_seed = abs_.finished_runs(tmp_path, [0, 1, 2])
    assert {s: list(r) for s, r in per_seed.items()} == {
        0: ["Baseline", "+ PEB", "+ PEB + L_pose + HFC (full)"], 1: ["Baseline", "+ PEB", "+ PEB + L_pose + HFC (full)"],
        2: ["Baseline", "+ PEB + L_pose + HFC (full)"]}
    assert per_seed[0]["+ PEB"]["components"] == {"use_pose_branch": True, "use_pose_loss": False, "use_hfc": False}
    res = abs_.write_seeds_table(tmp_path, per_seed)
    # f_ALL mAP: baseline 21, 31, 41 (sd 10); + PEB 35, 45 (sd 7.07): +9.00, pooled sd 8.66
    assert "| + PEB (seeds 0, 1) | x |  |  |" in res.markdown and "| 40.00 +- 7.07 | +9.00 (+1.0 sd) |" in res.markdown
    assert "| Baseline (seeds 0, 1, 2) |" in res.markdown
    doc = json.loads((tmp_path / "ablation_seeds.json").read_text())
    assert doc["seeds"] == [0, 1, 2] and [r["seeds"] for r in doc["rows"]] == [[0, 1, 2], [0, 1], [0, 1, 2]]


@pytest.mark.parametrize("kind", ["epochs", "data", "pose_init"])
def test_finished_runs_refuse_runs_of_another_budget_or_data(tmp_path, kind):
    first = _evaluated(tmp_path, 0, "baseline", 0.2, (False, False, False))
    _evaluated(tmp_path, 0, "full", 0.4, pose_init="lip.pth")
    odd = _evaluated(tmp_path, 1, "full", 0.5, epochs=20 if kind == "epochs" else 240,
                     manifest="h2" if kind == "data" else "h1",
                     pose_init="other.pth" if kind == "pose_init" else "lip.pth")
    with pytest.raises(ValueError) as err:
        abs_.finished_runs(tmp_path, [0, 1])
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(odd))
    key = {"epochs": "epochs = 20", "data": "manifest_hash = 'h2'", "pose_init": "model.pose_init = 'other.pth'"}[kind]
    assert key in msg and (str(first) if kind != "pose_init" else str(first.parents[2] / "full")) in msg


def test_the_script_writes_the_table_of_finished_runs_without_a_cache(tmp_path, capsys):
    from tests.benchmarks.scripts import load_script

    script = load_script("ablation")
    assert script.main(["--out", str(tmp_path), "--seeds", "2", "--table-only"]) == 1
    assert "no evaluated run for seeds 0, 1" in capsys.readouterr().err
    _evaluated(tmp_path, 0, "baseline", 0.2, (False, False, False))
    _evaluated(tmp_path, 1, "baseline", 0.3, (False, False, False))
    _evaluated(tmp_path, 0, "full", 0.4)
    assert script.main(["--out", str(tmp_path), "--seeds", "0,1", "--table-only"]) == 0
    out = capsys.readouterr().out
    assert "| + PEB + L_pose + HFC (full) (seed 0) | x | x | x | 20.00 | 40.00 | 20.50 | 41.00 | +15.00 |" in out
    assert (tmp_path / "ablation_seeds.md").read_text() in out
    with pytest.raises(SystemExit):
        script.main(["--out", str(tmp_path), "--table-only"])
    assert "--table-only needs --seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--out", str(tmp_path), "--seeds", "2"])
    assert "required: --cache" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--out", str(tmp_path), "--seeds", "2", "--table-only", "--set", "epochs=3"])
    assert "--set and --cache do not apply" in capsys.readouterr().err


def test_finished_runs_name_a_damaged_results_file(tmp_path):
    _evaluated(tmp_path, 0, "baseline", 0.2, (False, False, False))
    bad = _evaluated(tmp_path, 0, "full", 0.4)
    bad.write_text('{"config": {"model"')                 # cut short mid-write by another tool
    with pytest.raises(ValueError) as err:
        abs_.finished_runs(tmp_path, [0])
    assert str(err.value).startswith(f"{bad}: not an evaluation of a Table IV run (JSONDecodeError")
    assert "\n" not in str(err.value)
