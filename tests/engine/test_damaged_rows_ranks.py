"""``data.damaged_rows: skip`` under DDP: every row is read once in all, not once per rank, and
every rank leaves out the same rows (two ranks as two threads, their gather a rendezvous)."""
from __future__ import annotations

import threading
from collections import Counter

import vireid.engine.train_data as train_data
from tests.engine.test_damaged_rows import _damage
from tests.engine.test_trainer import cache_dir, tiny_config  # noqa: F401 - module-scoped cache fixture
from vireid.data.manifest import Manifest
from vireid.cache.reader import HeatmapCache


def _count_reads(monkeypatch):
    reads = Counter()
    lock = threading.Lock()
    read = HeatmapCache.read_arrays

    def counted(self, i, quantized=False):
        with lock:
            reads[(threading.current_thread().name, int(i))] += 1
        return read(self, i, quantized)
    monkeypatch.setattr(HeatmapCache, "read_arrays", counted)
    return reads


def test_each_rank_reads_its_share_and_all_agree(cache_dir, tmp_path, monkeypatch):  # noqa: F811
    work, _, _, source = _damage(cache_dir, tmp_path, "train", "rgb")
    manifest = Manifest.load(work / "manifest.json")
    cfg = tiny_config("data.damaged_rows=skip")
    reads = _count_reads(monkeypatch)
    single = train_data.split_training_data(cfg, HeatmapCache(work), manifest, work)
    rows = sorted(set(single.train_idx) | set(single.val_idx) | {i for i, _ in single.damaged})
    assert [HeatmapCache(work).paths[i] for i, _ in single.damaged] == [source]
    assert sorted(i for _, i in reads) == rows                              # one process: each row once
    reads.clear()

    world = 2
    posted, barrier = [None] * world, threading.Barrier(world)

    def gather(obj):                                                        # all_gather_object of 2 threads
        rank = int(threading.current_thread().name)
        posted[rank] = obj
        barrier.wait()
        return list(posted)
    monkeypatch.setattr(train_data.ddp, "active", lambda: True)
    monkeypatch.setattr(train_data.ddp, "all_gather_object", gather)
    splits = [None] * world

    def rank_main(rank):
        splits[rank] = train_data.split_training_data(cfg, HeatmapCache(work), manifest, work, rank, world)
    threads = [threading.Thread(target=rank_main, args=(r,), name=str(r)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(s is not None for s in splits), "a rank failed"
    assert sorted(i for _, i in reads) == rows                              # every row once in all
    assert all(n == 1 for n in reads.values())
    for r in range(world):
        assert {i for (name, i) in reads if name == str(r)} == set(rows[r::world])
        assert splits[r].damaged == single.damaged
        assert splits[r].train_idx == single.train_idx and splits[r].val_idx == single.val_idx
