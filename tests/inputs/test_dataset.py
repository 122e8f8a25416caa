"""CacheDataset over a tiny heatmap cache: content, reproducible augmentation, workers, index selection."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from pipeline.estimators.keypoints import SIDE_FILE, KeypointFileEstimator
from pipeline.heatmaps import HeatmapJob
from vireid.inputs.dataset import CacheDataset, make_label_map, training_indices
from vireid.inputs.sampler import CrossModalitySampler, SamplerConfig, SamplerError
from vireid.data.scan import scan
from vireid.cache.geometry import Geometry
from vireid.cache.reader import CacheError, HeatmapCache
from vireid.inputs.transforms import EvalTransform, TrainTransform, TransformConfig
from tests.data.trees import SYSU_SPLITS, make_regdb, make_sysu
from tests.pipeline.test_heatmaps import SMALL, write_side_file

TCFG = TransformConfig(SMALL.geometry, pad=4)


def build_cache(tmp, name, make, dataset, drop=()):
    root = tmp / name
    spec = make(root)
    for rel in drop:
        shutil.rmtree(root / rel)
    spec = dataclasses.replace(spec, expected={})
    manifest = scan(dataset, root, spec=spec, allow_partial=True)
    write_side_file(root, manifest)
    HeatmapJob(manifest, root, tmp / f"{name}-cache", KeypointFileEstimator(root / SIDE_FILE), SMALL, jobs=1).run()
    return HeatmapCache(tmp / f"{name}-cache"), manifest


@pytest.fixture(scope="module")
def sysu(tmp_path_factory):
    return build_cache(tmp_path_factory.mktemp("sysu"), "SYSU", make_sysu, "sysu")


@pytest.fixture(scope="module")
def regdb(tmp_path_factory):
    return build_cache(tmp_path_factory.mktemp("regdb"), "RegDB", make_regdb, "regdb")


def test_items_match_the_cache(sysu):
    cache, manifest = sysu
    train, _ = training_indices(cache, manifest)
    ds = CacheDataset(cache, train, seed=0)                  # default: eval transform at the cache size
    assert len(ds) == len(train) and ds.num_classes == 4
    item = ds[3]
    entry = cache.get(train[3])
    assert item["image"].shape == (3, 32, 16) and item["image"].dtype == torch.float32
    assert item["heatmaps"].shape == (16, 8, 4)
    np.testing.assert_array_equal(item["heatmaps"].numpy(), entry["heatmaps"])
    np.testing.assert_array_equal(item["joint_weights"].numpy(), entry["confidence"])
    expect = EvalTransform(TransformConfig(Geometry((32, 16), 4)))(entry)["image"]
    torch.testing.assert_close(item["image"], expect, rtol=0, atol=0)
    assert (item["pid"], item["camid"], item["modality"]) == (entry["pid"], entry["camid"], entry["modality"])
    assert item["label"] == make_label_map([1, 2, 4, 5])[entry["pid"]]
    assert item["index"] == 3 and item["cache_index"] == train[3]
    meta = cache.metadata()
    for i in range(len(cache)):
        e = cache.get(i, with_image=False)
        assert (meta["pid"][i], meta["camid"][i], meta["modality"][i]) == (e["pid"], e["camid"], e["modality"])
        np.testing.assert_array_equal(meta["confidence"][i], e["confidence"])
        image, heatmaps = cache.read_arrays(i)
        full = cache.get(i)
        np.testing.assert_array_equal(image, full["image"])
        np.testing.assert_array_equal(heatmaps, full["heatmaps"])


def test_augmentation_reproducible_per_seed_epoch_index(sysu):
    cache, manifest = sysu
    ds = CacheDataset(cache, transform=TrainTransform(TCFG), seed=3)
    a, b = ds[5], ds[5]
    torch.testing.assert_close(a["image"], b["image"], rtol=0, atol=0)
    variants = [ds[(5, 0, d)]["image"] for d in range(6)]
    assert any(not torch.equal(variants[0], v) for v in variants[1:])      # draws differ
    ds.set_epoch(1)
    epochs = [ds[5]["image"]] + [ds[(5, e, 0)]["image"] for e in (2, 3, 4)]
    assert any(not torch.equal(a["image"], v) for v in epochs)
    ds.set_epoch(0)
    torch.testing.assert_close(ds[5]["image"], a["image"], rtol=0, atol=0)
    torch.testing.assert_close(ds[(5, 0, 0)]["image"], a["image"], rtol=0, atol=0)


def _batches(loader):
    return [{k: v.clone() for k, v in b.items() if torch.is_tensor(v)} for b in loader]


def test_two_workers_give_the_same_batches_as_zero(sysu):
    cache, manifest = sysu
    train, _ = training_indices(cache, manifest)
    ds = CacheDataset(cache, train, transform=TrainTransform(TCFG), seed=11)
    cfg = SamplerConfig(num_ids=2, num_per_modality=2)

    def run(workers):
        sampler = CrossModalitySampler(ds.pids, ds.modalities, cfg, seed=11, keyed=True)
        sampler.set_epoch(2)
        return _batches(DataLoader(ds, batch_sampler=sampler, num_workers=workers))

    single, multi = run(0), run(2)
    assert len(single) == len(multi) > 1
    for x, y in zip(single, multi):
        assert x.keys() == y.keys()
        for k in x:
            torch.testing.assert_close(x[k], y[k], rtol=0, atol=0)
    first = single[0]
    assert first["image"].shape == (8, 3, 32, 16) and first["heatmaps"].shape == (8, 16, 8, 4)
    assert first["modality"].tolist() == [0] * 4 + [1] * 4
    assert (first["label"] < ds.num_classes).all()


def test_sysu_training_indices_and_val_holdout(sysu):
    cache, manifest = sysu
    train, val = training_indices(cache, manifest)
    assert val == []
    pids = {cache.get(i, with_image=False)["pid"] for i in train}
    assert pids == set(SYSU_SPLITS["train"] + SYSU_SPLITS["val"])
    assert len(train) == len(manifest.select(split=("train", "val")))
    train, val = training_indices(cache, manifest, holdout="val")
    assert {cache.get(i, with_image=False)["pid"] for i in train} == set(SYSU_SPLITS["train"])
    assert {cache.get(i, with_image=False)["pid"] for i in val} == set(SYSU_SPLITS["val"])
    with pytest.raises(ValueError, match=r"splits \['bogus'\] do not occur"):
        training_indices(cache, manifest, splits=("train", "bogus"))


def test_fraction_holdout_is_seeded_and_disjoint(sysu):
    cache, manifest = sysu
    a = training_indices(cache, manifest, holdout="fraction", holdout_fraction=0.25, seed=0)
    assert a == training_indices(cache, manifest, holdout="fraction", holdout_fraction=0.25, seed=0)
    pid = lambda idx: {cache.get(i, with_image=False)["pid"] for i in idx}
    assert len(pid(a[1])) == 1 and not pid(a[0]) & pid(a[1])
    assert pid(a[0]) | pid(a[1]) == {1, 2, 4, 5}
    held = {frozenset(pid(training_indices(cache, manifest, holdout="fraction", holdout_fraction=0.25,
                                             seed=s)[1])) for s in range(8)}
    assert len(held) > 1


def test_regdb_trial_tables(regdb):
    cache, manifest = regdb
    for trial in (1, 2):
        train, val = training_indices(cache, manifest, trial=trial)
        table = manifest.splits[f"trial:{trial}"]
        expect = {row[0] for row in table["train:visible"] + table["train:thermal"]}
        assert {cache.paths[i] for i in train} == expect and val == []
    with pytest.raises(ValueError, match="RegDB has no 'val' split"):
        training_indices(cache, manifest, holdout="val")
    with pytest.raises(ValueError, match="'trial:7'"):
        training_indices(cache, manifest, trial=7)


def test_identity_without_ir_is_named(tmp_path):
    cache, manifest = build_cache(tmp_path, "SYSU", make_sysu, "sysu", drop=("cam3/0004", "cam6/0004"))
    with pytest.raises(SamplerError, match=r"without IR images: \[4\]"):
        training_indices(cache, manifest)


def test_size_mismatch_names_both_sizes(sysu):
    cache, _ = sysu
    # the one geometry check (vireid.cache.geometry), vireid-train's at start-up (trainer.check_cache);
    # CacheDataset leaves it to its caller
    with pytest.raises(CacheError, match=r"cache\.json: input_size 32x16 differs from the configured "
                                         r"data\.input_size 288x144 \(heatmaps 8x4 in the cache, 72x36 configured\)"):
        cache.geometry.check(TransformConfig().geometry, cache.root / "cache.json")


def test_wrong_manifest_refused(sysu, regdb):
    cache, _ = sysu
    _, other = regdb
    with pytest.raises(CacheError, match="not from the given regdb manifest"):
        training_indices(cache, other)
