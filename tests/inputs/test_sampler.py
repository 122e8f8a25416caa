"""Cross-modality identity sampler: batch invariants, reproducibility, resume, ranks, errors."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from vireid.inputs.sampler import CrossModalitySampler, SamplerConfig, SamplerError


def population(seed: int = 0, ids: int = 12):
    """Identities with 1..9 RGB and 1..6 IR images each, in a shuffled dataset order."""
    rng = np.random.default_rng(seed)
    pids, mods = [], []
    for pid in range(100, 100 + ids):
        for m, hi in ((0, 10), (1, 7)):
            n = int(rng.integers(1, hi))
            pids += [pid] * n
            mods += [m] * n
    order = rng.permutation(len(pids))
    return np.asarray(pids)[order], np.asarray(mods)[order]


CFG = SamplerConfig(num_ids=4, num_per_modality=3)


def test_batch_invariants():
    pids, mods = population()
    s = CrossModalitySampler(pids, mods, CFG, seed=1)
    d, k = CFG.num_ids, CFG.num_per_modality
    batches = list(s)
    assert len(batches) == s.batches_per_epoch == int(np.ceil(max((mods == 0).sum(), (mods == 1).sum()) / (d * k)))
    for batch in batches:
        assert len(batch) == 2 * d * k == s.batch_size
        b = np.asarray(batch)
        rgb, ir = b[:d * k], b[d * k:]
        assert (mods[rgb] == 0).all() and (mods[ir] == 1).all()           # RGB first, then IR
        rgb_ids = pids[rgb].reshape(d, k)
        ir_ids = pids[ir].reshape(d, k)
        assert (rgb_ids == rgb_ids[:, :1]).all() and (ir_ids == ir_ids[:, :1]).all()   # K per identity, grouped
        assert len(set(rgb_ids[:, 0])) == d                                # D distinct identities
        np.testing.assert_array_equal(rgb_ids[:, 0], ir_ids[:, 0])         # same identity order
        for pid_row, idx_row, m in ((rgb_ids, rgb, 0), (ir_ids, ir, 1)):
            for j in range(d):
                chunk = idx_row[j * k:(j + 1) * k]
                pool = int(((pids == pid_row[j, 0]) & (mods == m)).sum())
                # repeats inside an identity only when it has fewer than K images of the modality
                assert len(set(chunk.tolist())) == min(k, pool)


def test_every_image_is_used_and_ids_balanced():
    pids, mods = population(3)
    s = CrossModalitySampler(pids, mods, SamplerConfig(num_ids=4, num_per_modality=3, batches_per_epoch=60), seed=0)
    flat = np.concatenate([np.asarray(b) for b in s])
    assert set(flat.tolist()) == set(range(len(pids)))
    per_id = Counter(pids[np.concatenate([np.asarray(b)[:12:3] for b in s])].tolist())
    assert max(per_id.values()) - min(per_id.values()) <= 1                 # identity decks: near-equal use


def test_reproducible_per_seed_and_epoch():
    pids, mods = population()
    a = CrossModalitySampler(pids, mods, CFG, seed=5)
    b = CrossModalitySampler(pids, mods, CFG, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(CrossModalitySampler(pids, mods, CFG, seed=6)) != first


@pytest.mark.parametrize("stop", [0, 1, 4])
def test_resume_mid_epoch_yields_the_remaining_batches(stop):
    pids, mods = population()
    ref = CrossModalitySampler(pids, mods, CFG, seed=2)
    ref.set_epoch(3)
    full = list(ref)
    s = CrossModalitySampler(pids, mods, CFG, seed=2)
    s.set_epoch(3)
    it = iter(s)
    seen = [next(it) for _ in range(stop)]
    state = s.state_dict()
    assert state["epoch"] == 3 and state["consumed"] == stop
    fresh = CrossModalitySampler(pids, mods, CFG, seed=2)
    fresh.load_state_dict(state)
    assert len(fresh) == len(full) - stop
    rest = list(fresh)
    assert seen + rest == full
    assert list(fresh) == full                            # the next pass is the whole epoch again


def test_resume_with_trainer_count_and_wrong_settings():
    pids, mods = population()
    s = CrossModalitySampler(pids, mods, CFG, seed=2)
    full = list(s)
    fresh = CrossModalitySampler(pids, mods, CFG, seed=2)
    fresh.load_state_dict(s.state_dict(consumed=2))
    assert list(fresh) == full[2:]
    done = CrossModalitySampler(pids, mods, CFG, seed=2)
    done.load_state_dict(s.state_dict(consumed=len(full)))
    assert list(done) == []
    other = CrossModalitySampler(pids, mods, CFG, seed=3)
    with pytest.raises(ValueError, match="seed: saved 2, now 3"):
        other.load_state_dict(s.state_dict())


@pytest.mark.parametrize("world_size", [2, 4])
def test_ranks_are_disjoint_and_union_is_single_process(world_size):
    pids, mods = population()
    single = list(CrossModalitySampler(pids, mods, CFG, seed=9))
    ranks = [list(CrossModalitySampler(pids, mods, CFG, seed=9, rank=r, world_size=world_size))
             for r in range(world_size)]
    d, k = CFG.num_ids, CFG.num_per_modality
    per = d // world_size
    for b, whole in enumerate(single):
        parts = [np.asarray(r[b]) for r in ranks]
        id_sets = [set(pids[p].tolist()) for p in parts]
        for i in range(world_size):
            assert len(parts[i]) == 2 * per * k
            assert (mods[parts[i][:per * k]] == 0).all() and (mods[parts[i][per * k:]] == 1).all()
            for j in range(i + 1, world_size):
                assert not id_sets[i] & id_sets[j]
        assert Counter(np.concatenate(parts).tolist()) == Counter(whole)
    with pytest.raises(ValueError, match="cannot be split evenly"):
        CrossModalitySampler(pids, mods, CFG, world_size=5)        # 4 x 3 = 12 image pairs


@pytest.mark.parametrize("world_size", [3, 6, 12])
def test_more_ranks_than_identities_split_identities_alike_in_both_modalities(world_size):
    """D x K = 4 x 3 on 3, 6 or 12 ranks (the paper's 8 x 4 on 16 GPUs is the same case): every rank
    gets 12 / world_size RGB and as many IR images, of the same identities in both modalities."""
    pids, mods = population()
    single = list(CrossModalitySampler(pids, mods, CFG, seed=9))
    ranks = [list(CrossModalitySampler(pids, mods, CFG, seed=9, rank=r, world_size=world_size))
             for r in range(world_size)]
    per = CFG.num_ids * CFG.num_per_modality // world_size
    for b, whole in enumerate(single):
        parts = [np.asarray(r[b]) for r in ranks]
        for part in parts:
            assert len(part) == 2 * per
            assert (mods[part[:per]] == 0).all() and (mods[part[per:]] == 1).all()
            assert pids[part[:per]].tolist() == pids[part[per:]].tolist()
        assert np.concatenate([p[:per] for p in parts]).tolist() == list(whole[:len(whole) // 2])
        assert Counter(np.concatenate(parts).tolist()) == Counter(whole)


def test_keyed_draws_are_global_slots():
    pids, mods = population()
    keyed = list(CrossModalitySampler(pids, mods, CFG, seed=4, keyed=True))
    plain = list(CrossModalitySampler(pids, mods, CFG, seed=4))
    size = CFG.batch_size
    for b, (kb, pb) in enumerate(zip(keyed, plain)):
        assert [i for i, _, _ in kb] == pb
        assert [dr for _, _, dr in kb] == list(range(b * size, (b + 1) * size))
        assert {e for _, e, _ in kb} == {0}
    rank1 = list(CrossModalitySampler(pids, mods, CFG, seed=4, keyed=True, rank=1, world_size=2))
    global_keys = {key for batch in keyed for key in batch}
    assert all(key in global_keys for batch in rank1 for key in batch)


def test_identity_missing_a_modality_is_named():
    pids = np.array([1, 1, 2, 2, 3, 3, 4])
    mods = np.array([0, 1, 0, 1, 0, 0, 1])
    with pytest.raises(SamplerError, match=r"without IR images: \[3\]") as err:
        CrossModalitySampler(pids, mods, SamplerConfig(num_ids=2, num_per_modality=1))
    assert "without RGB images: [4]" in str(err.value)
    with pytest.raises(SamplerError, match="fewer than num_ids"):
        CrossModalitySampler([1, 1], [0, 1], SamplerConfig(num_ids=2))


class _Echo(Dataset):
    def __len__(self):
        return 1000

    def __getitem__(self, i):
        return torch.tensor(i)


def test_usable_as_dataloader_batch_sampler():
    pids, mods = population()
    s = CrossModalitySampler(pids, mods, CFG, seed=0)
    loader = DataLoader(_Echo(), batch_sampler=s)
    got = [b.tolist() for b in loader]
    assert len(loader) == len(got) == s.batches_per_epoch
    assert got == list(CrossModalitySampler(pids, mods, CFG, seed=0))
