"""vireid-extract: folder and manifest inputs, the feature file, resumption, mismatches."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.inference.helpers import assert_help_mentions
from vireid.cli.extract import cli
from vireid.inference.extractor import FeatureExtractor
from vireid.inference.featurefile import FeatureFile, FeatureFileMismatch, check_origin


def _one_line_error(res) -> str:
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


def test_help():
    assert_help_mentions(cli, "--checkpoint", "--images", "--manifest", "--split", "--modality", "--feature",
                         "--flip", "--out", "--chunk-size", "--restart", "--overwrite", "Resumable")


def test_manifest_to_feature_file(trained, tmp_path):
    out = tmp_path / "gallery.h5"
    res = CliRunner().invoke(cli, ["--checkpoint", str(trained.checkpoint), "--manifest",
                                   str(trained.cache / "manifest.json"), "--root", str(trained.root),
                                   "--split", "test", "--modality", "rgb", "--out", str(out), "--no-progress",
                                   "--device", "cpu", "--chunk-size", "5"])
    assert res.exit_code == 0, res.output
    records = trained.manifest.select(split=["test"], modality="rgb")
    ff = FeatureFile.load(out)
    assert ff.paths == [r.path for r in records] and len(ff) == len(records)
    assert (ff.modality == 0).all() and list(ff.pid) == [r.pid for r in records]
    assert list(ff.camid) == [r.camid for r in records]
    assert ff.meta["feature"] == "f_all" and ff.meta["flip"] is True and ff.meta["dim"] == ff.features.shape[1]
    assert ff.meta["source"]["manifest_hash"] == trained.manifest.hash
    ex = FeatureExtractor(trained.checkpoint, device="cpu", feature="f_all", flip=True)
    np.testing.assert_allclose(ff.features, ex(records, root=trained.root), atol=1e-5)
    assert f"{len(records)} images ({len(records)} RGB, 0 IR, {len(records)} with identities)" in res.output
    assert not (tmp_path / ".gallery.h5.parts").exists()


def test_folder_resumes_after_an_interruption(trained, tmp_path, monkeypatch):
    """Killed after two chunks, the same command extracts only the rest and writes the same file
    as an uninterrupted run."""
    folder = tmp_path / "crops"
    chosen = trained.manifest.select(split=["test"], modality="ir")[:4] + \
        trained.manifest.select(split=["test"], modality="rgb")[:4]
    for r in chosen:
        dst = folder / r.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(trained.root / r.path, dst)
    args = ["--checkpoint", str(trained.checkpoint), "--images", str(folder), "--feature", "f_id", "--no-flip",
            "--chunk-size", "3", "--batch-size", "3", "--no-progress", "--device", "cpu"]
    straight = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "straight.h5")])
    assert straight.exit_code == 0, straight.output

    calls = {"n": 0}
    original = FeatureExtractor.extract_items

    def dies_on_third(self, items, return_modality=False):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("killed")
        return original(self, items, return_modality)

    monkeypatch.setattr(FeatureExtractor, "extract_items", dies_on_third)
    out = tmp_path / "resumed.h5"
    res = CliRunner().invoke(cli, args + ["--out", str(out)])
    assert isinstance(res.exception, RuntimeError) and not out.exists()
    assert sorted(p.name for p in (tmp_path / ".resumed.h5.parts").iterdir()) == \
        ["chunk-000000.npz", "chunk-000001.npz", "job.json"]
    calls["n"] = -100
    res = CliRunner().invoke(cli, args + ["--out", str(out)])
    assert res.exit_code == 0, res.output
    assert calls["n"] == -99 and "1 chunk(s) extracted, 2 reused" in res.output       # only the last chunk
    a, b = FeatureFile.load(tmp_path / "straight.h5"), FeatureFile.load(out)
    assert a.paths == b.paths == sorted(r.path for r in chosen)
    want = {r.path: int(r.modality == "ir") for r in chosen}
    assert list(b.modality) == [want[p] for p in b.paths]                  # auto: the grey crops ran as IR
    np.testing.assert_allclose(a.features, b.features, atol=1e-6)
    assert (b.pid == -1).all()


def test_mismatches_are_refused_by_name(trained, tmp_path):
    base = ["--checkpoint", str(trained.checkpoint), "--manifest", str(trained.cache / "manifest.json"),
            "--split", "test", "--modality", "ir", "--no-progress", "--device", "cpu"]
    out = tmp_path / "q.h5"
    assert CliRunner().invoke(cli, base + ["--out", str(out)]).exit_code == 0
    line = _one_line_error(CliRunner().invoke(cli, base + ["--out", str(out), "--feature", "f_id"]))
    assert "q.h5 holds features of checkpoint" in line and "feature f_all" in line and "(feature differs)" in line
    # another checkpoint (other weights): refused for an interrupted extraction too
    from vireid.model.checkpoint import load_checkpoint, save_checkpoint

    data = load_checkpoint(trained.checkpoint)
    data["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in data["model"].items()}
    other = tmp_path / "other.pt"
    save_checkpoint(other, data)
    args = ["--checkpoint", str(other)] + base[2:] + ["--out", str(out)]
    line = _one_line_error(CliRunner().invoke(cli, args))
    assert "checkpoint_sha256 differs" in line
    parts = tmp_path / ".p.h5.parts"
    parts.mkdir()
    (parts / "job.json").write_text('{"checkpoint_sha256": "abc", "feature": "f_all", "flip": true}')
    line = _one_line_error(CliRunner().invoke(cli, base + ["--out", str(tmp_path / "p.h5")]))
    assert "an interrupted extraction; --restart discards it" in line
    res = CliRunner().invoke(cli, base + ["--out", str(tmp_path / "p.h5"), "--restart"])
    assert res.exit_code == 0, res.output
    with pytest.raises(FeatureFileMismatch):
        check_origin("x", {"checkpoint_sha256": "a", "feature": "f_id", "flip": True},
                     {"checkpoint_sha256": "a", "feature": "f_id", "flip": False})


def test_input_errors(trained, tmp_path):
    ck = ["--checkpoint", str(trained.checkpoint), "--out", str(tmp_path / "x.h5"), "--no-progress"]
    res = CliRunner().invoke(cli, ck)
    assert res.exit_code == 2 and "either --images DIR or --manifest FILE" in res.output
    (tmp_path / "empty").mkdir()
    assert "no images" in _one_line_error(CliRunner().invoke(cli, ck + ["--images", str(tmp_path / "empty")]))
    line = _one_line_error(CliRunner().invoke(cli, ck + ["--manifest", str(trained.cache / "manifest.json"),
                                                         "--split", "nope"]))
    assert "no record matches split=['nope']" in line
    torch.save({"x": 1}, tmp_path / "foreign.pt")
    line = _one_line_error(CliRunner().invoke(cli, ["--checkpoint", str(tmp_path / "foreign.pt"), "--images",
                                                    str(trained.root / "cam1"), "--out", str(tmp_path / "y.h5")]))
    assert "not a vireid-checkpoint/1 file" in line
