"""LLCM's reader: the synthesizer's tree scans; bad input is named one problem per line."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import List

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.synth import synthesize
from vireid.data import registry
from vireid.data.protocol import Sample
from vireid.data.scan import scan
from vireid.data.scan_checks import ScanError


@pytest.fixture(scope="module")
def llcm_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("llcm") / "LLCM"
    synthesize("llcm", root, ids=8, seed=3, images_per_camera=1)
    return root


def _copy(tree: Path, tmp_path: Path) -> Path:
    root = tmp_path / "LLCM"
    shutil.copytree(tree, root)
    return root


def test_synthetic_tree_scans_in_the_distributed_layout(llcm_tree: Path) -> None:
    for rel in ("idx/train_vis.txt", "idx/train_nir.txt", "idx/test_id.txt"):
        assert (llcm_tree / rel).is_file()
    assert sorted(p.name for p in (llcm_tree / "test_vis").iterdir()) == [f"cam{i}" for i in range(1, 10)]
    assert "cam3" not in {p.name for p in (llcm_tree / "test_nir").iterdir()}
    manifest = scan("llcm", llcm_tree)
    test_ids = manifest.splits["id_lists"]["test"]
    assert len(test_ids) == 3 and manifest.splits["training_splits"] == ["train"]
    train = [r for r in manifest.records if r.split == "train"]
    test = [r for r in manifest.records if r.split == "test"]
    assert {r.pid for r in test} == set(test_ids) and not {r.pid for r in train} & set(test_ids)
    assert all(r.path.startswith(("test_vis/", "test_nir/")) for r in test)
    for r in manifest.records:                           # a camera number is shared by both modalities
        assert r.camera == f"{'vis' if r.modality == 'rgb' else 'nir'}_cam{r.camid}"
    assert not any(r.camid == 3 and r.modality == "ir" for r in manifest.records)
    train_ids = sorted({r.pid for r in train})
    for line in (llcm_tree / "idx" / "train_vis.txt").read_text().splitlines():   # label: the id's rank
        path, label = line.split()
        rec = manifest.by_path()[path]
        assert rec.modality == "rgb" and rec.split == "train" and train_ids.index(rec.pid) == int(label)


def test_bad_input_is_listed_all_at_once_with_file_and_line(llcm_tree: Path, tmp_path: Path) -> None:
    root = _copy(llcm_tree, tmp_path)
    (root / "idx" / "train_nir.txt").unlink()                                    # a missing list
    vis = root / "idx" / "train_vis.txt"
    n = len(vis.read_text().splitlines())
    with vis.open("a") as f:                                                     # a line naming no image
        f.write("vis/cam2/0999/0999_c02_s99999_vis.jpg 0\n")
    stray = root / "test_vis" / "cam1" / "0998"                                  # an unlisted identity
    stray.mkdir()
    shutil.copy(next((root / "test_vis").rglob("*.jpg")), stray / "0998_c01_s00001_vis.jpg")
    with pytest.raises(ScanError) as err:
        scan("llcm", root)
    fatal = {p.kind: p for p in err.value.problems if p.fatal}
    assert {"missing-file", "missing-image", "unlisted-id"} <= set(fatal), err.value   # (and the counts)
    assert fatal["missing-file"].path == str(root / "idx" / "train_nir.txt")
    assert fatal["missing-image"].path == str(vis) and fatal["missing-image"].line == n + 1
    assert "vis/cam2/0999/0999_c02_s99999_vis.jpg" in fatal["missing-image"].detail
    assert fatal["unlisted-id"].path == str(stray) and "idx/test_id.txt" in fatal["unlisted-id"].detail

    from pipeline.cli import cli as prep

    res = CliRunner().invoke(prep, ["manifest", "--dataset", "llcm", "--root", str(root),
                                    "--out", str(tmp_path / "m.json"), "--no-progress"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    listed = [ln.strip() for ln in res.output.splitlines() if ln.startswith("  ")]
    assert f"{root / 'idx' / 'train_nir.txt'}: missing-file: LLCM training list not found" in listed, res.output
    assert any(ln.startswith(f"{vis}:{n + 1}: missing-image: vis/cam2/0999/0999_c02_s99999_vis.jpg")
               for ln in listed), res.output
    assert any(ln.startswith(f"{stray}: unlisted-id: identity 0998 is not in idx/test_id.txt") for ln in listed)


def test_label_conflict_and_test_identity_in_training_lists(llcm_tree: Path, tmp_path: Path) -> None:
    root = _copy(llcm_tree, tmp_path)
    nir = root / "idx" / "train_nir.txt"
    lines = nir.read_text().splitlines()
    path, label = lines[0].split()
    lines[0] = f"{path} {int(label) + 50}"
    test_img = next(p for p in (root / "test_nir").rglob("*.jpg"))
    lines.append(f"{test_img.relative_to(root).as_posix()} 7")
    nir.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScanError) as err:
        scan("llcm", root)
    kinds = sorted((p.kind, p.line) for p in err.value.problems if p.fatal)
    assert ("split-overlap", len(lines)) in kinds
    assert any(k == "inconsistent-label" for k, _ in kinds), kinds


def _fake_protocol(monkeypatch) -> None:
    """Stand-ins for the llcm branch's vireid.data.protocol.llcm_query / llcm_gallery (the
    wiring, not the golden sampling, is under test): every image / the first of each folder."""
    import vireid.data.protocol as protocol

    def query(layout, test_ids, folder) -> List[Sample]:
        return [Sample(f"{folder}/{cam}/{pid}/{f}", int(pid), int(cam[3:]))
                for cam, ids in sorted(layout[folder].items()) for pid, files in sorted(ids.items()) for f in files]

    def gallery(layout, test_ids, folder, trial) -> List[Sample]:
        return [Sample(f"{folder}/{cam}/{pid}/{files[trial % len(files)]}", int(pid), int(cam[3:]))
                for cam, ids in sorted(layout[folder].items()) for pid, files in sorted(ids.items())]

    monkeypatch.setattr(protocol, "llcm_query", query, raising=False)
    monkeypatch.setattr(protocol, "llcm_gallery", gallery, raising=False)


def test_protocol_sets_both_directions(llcm_tree: Path, monkeypatch) -> None:
    from vireid.engine.evaluate import EvalOptions, evaluate_sets

    _fake_protocol(monkeypatch)
    manifest = scan("llcm", llcm_tree)
    sets = registry.get("llcm").protocol_sets(manifest, EvalOptions(trials=2), {})
    assert list(sets) == ["IR-to-VIS", "VIS-to-IR"]
    i2v, v2i = sets["IR-to-VIS"], sets["VIS-to-IR"]
    assert not i2v.transposed and v2i.transposed and i2v.trials == [0, 1]
    assert {s.path.split("/")[0] for s in i2v.query} == {"test_nir"}
    assert {s.path.split("/")[0] for g in i2v.galleries for s in g} == {"test_vis"}
    assert {s.path.split("/")[0] for s in v2i.query} == {"test_vis"}
    assert {s.path.split("/")[0] for g in v2i.galleries for s in g} == {"test_nir"}

    calls = []

    def metric(distmat, q_pids, g_pids, q_cams, g_cams):
        calls.append((distmat.shape, len(q_pids), len(g_pids)))
        from vireid.evaluation import regdb_metrics
        return regdb_metrics(distmat, q_pids, g_pids)

    row_of = {p: i for i, p in enumerate(dict.fromkeys(v2i.paths() + i2v.paths()))}
    feats = np.random.default_rng(0).normal(size=(len(row_of), 8)).astype(np.float32)
    evaluate_sets(v2i, {"f": feats}, row_of, metric)
    g0 = len(v2i.galleries[0])
    assert calls[0] == ((g0, len(v2i.query)), g0, len(v2i.query))   # rows: the NIR sample
