"""A damaged cache row in training and evaluation: stopped and named, or skipped and logged."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.engine.test_trainer import TINY, cache_dir  # noqa: F401 - the module-scoped cache fixture
from tests.fs import flip_byte, one_line, row_offset
from vireid.cli.train import cli as train_cli
from vireid.inputs.dataset import training_indices
from vireid.data.manifest import Manifest
from vireid.cache.reader import HeatmapCache
from vireid.model.checkpoint import load_checkpoint
from vireid.engine.runlog import read_log

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _damage(cache_dir: Path, tmp_path: Path, split: str, modality: str = "ir") -> tuple:  # noqa: F811
    """A copy of the cache with one heatmap byte flipped in an image of ``split``; returns
    (copy, shard path, row, source path)."""
    work = tmp_path / "cache"
    shutil.copytree(cache_dir, work)
    cache = HeatmapCache(work)
    manifest = Manifest.load(work / "manifest.json")
    source = next(r.path for r in manifest.records if r.split == split and r.modality == modality)
    shard, row = cache.locations[cache.index_of(source)]
    path = work / cache.shards[shard]
    offset, length = row_offset(path, "heatmaps", row)
    flip_byte(path, offset + length // 2, 0x08)
    return work, path, row, source


def _train_args(cache: Path, out: Path, *extra: str):
    sets = [a for kv in TINY for a in ("--set", kv)]
    return ["--config", str(CONFIGS / "demo.yaml"), "--cache", str(cache), "--out", str(out), *sets,
            "--set", "epochs=1", "--set", "data.holdout=null", "--no-progress", *extra]


@pytest.mark.parametrize("workers", [0, 1])
def test_training_stops_naming_the_row(cache_dir, tmp_path, workers):  # noqa: F811
    work, shard, row, source = _damage(cache_dir, tmp_path, "train")
    res = CliRunner().invoke(train_cli, _train_args(work, tmp_path / "run", "--set", f"data.workers={workers}",
                                                    "--set", "data.batches_per_epoch=8"))
    assert res.exit_code == 1, repr(res.exception)
    line = one_line(res.output)
    assert f"{shard}: row {row} ({source}) is damaged: checksum mismatch (heatmaps)" in line, line


def test_skip_leaves_the_row_out_and_logs_it(cache_dir, tmp_path, caplog):  # noqa: F811
    work, shard, row, source = _damage(cache_dir, tmp_path, "train", "rgb")     # its id keeps other RGB images
    manifest = Manifest.load(work / "manifest.json")
    train, _ = training_indices(HeatmapCache(work, check_rows=False), manifest)
    res = CliRunner().invoke(train_cli, _train_args(work, tmp_path / "run", "--set", "data.damaged_rows=skip",
                                                    "--set", "data.batches_per_epoch=2"))
    assert res.exit_code == 0, res.output
    records = [r for r in read_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "damaged"]
    assert [r["path"] for r in records] == [source]
    assert f"{shard}: row {row} ({source}) is damaged" in records[0]["message"]
    assert any("left out (data.damaged_rows=skip)" in m and source in m for m in caplog.messages)
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert len(ck["label_map"]) == len({manifest.by_path()[HeatmapCache(work).paths[i]].pid for i in train})


def test_evaluation_stops_naming_the_row(cache_dir, tmp_path):  # noqa: F811
    import dataclasses

    import torch

    from vireid.cli.evaluate import cli as eval_cli
    from vireid.model.checkpoint import save_checkpoint
    from vireid.model import ModelConfig, PoseVIReIDNet

    work, shard, row, source = _damage(cache_dir, tmp_path, "test")
    torch.manual_seed(0)
    cfg = ModelConfig(backbone="resnet18", input_size=(96, 48), num_classes=4)
    manifest = Manifest.load(work / "manifest.json")
    save_checkpoint(tmp_path / "last.pt", {"model": PoseVIReIDNet(cfg).state_dict(),
                                           "model_config": dataclasses.asdict(cfg), "config": {}, "dataset": "sysu",
                                           "trial": None, "manifest_hash": manifest.hash, "epoch": 0})
    res = CliRunner().invoke(eval_cli, ["--checkpoint", str(tmp_path / "last.pt"), "--cache", str(work), "--trials",
                                        "1", "--out", str(tmp_path / "ev"), "--no-progress"])
    assert res.exit_code == 1, repr(res.exception)
    assert f"{shard}: row {row} ({source}) is damaged: checksum mismatch (heatmaps)" in one_line(res.output)
    assert not (tmp_path / "ev" / "results.json").exists()
