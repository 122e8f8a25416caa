"""The cross-modality identity sampler of Section III-E (after the AGW / hetero-center baselines).

Every batch holds ``D`` distinct identities (default 8) and, for each, ``K`` RGB and
``K`` IR images (default 4): ``2 * D * K`` = 64 samples. Layout of a batch: all RGB
samples first, identity by identity (``K`` each), then the IR samples in the same
identity order -- the layout the hetero-center triplet reference code uses (our loss
does not depend on it, see :mod:`vireid.losses.hetero_center`).

How an epoch is drawn (a pure function of ``(seed, epoch)``, via one
``numpy.random.Generator``):

* identities come from a shuffled deck of all training identities, ``D`` at a time; when
  the deck runs out a new shuffled deck starts, and an identity already in the current
  batch is deferred to the next one, so identities are unique within a batch and every
  identity is used about equally often;
* images of one (identity, modality) come from their own shuffled deck, ``K`` at a time,
  reshuffled when exhausted, so every image is used before any repeats. Only an
  identity with fewer than ``K`` images of a modality gets repeats inside one batch
  (all its images, then random extra draws among them);
* the epoch length is ``ceil(max(#RGB, #IR) / (D * K))`` batches by default: enough
  batch slots for the larger modality's images once (the baselines' ``IdentitySampler``
  uses ``max(#RGB, #IR)`` samples per epoch the same way); ``batches_per_epoch``
  overrides it.

Resuming: the sampler counts the batches it has yielded in the current epoch;
``state_dict()`` returns ``(epoch, consumed)`` plus the settings, and after
``load_state_dict`` the next iteration yields exactly the remaining batches of that
epoch. A DataLoader with workers pulls batches ahead of the training loop, so a
trainer should save ``state_dict(consumed=steps_done)`` with the number of batches
it has actually trained on.

Distributed: with ``world_size`` ranks, the ``D * K`` RGB slots of every *global* batch
(identity by identity) are cut into ``world_size`` equal runs, and rank ``r`` gets run ``r``
of the RGB slots and the same run of the IR slots (its RGB samples, then its IR samples):
``D * K`` must be divisible by ``world_size``. Where ``world_size`` divides ``D`` every rank
holds ``D / world_size`` whole identities; with more ranks than that (the paper's 8 x 4 on
16 GPUs: 2 RGB + 2 IR per rank) an identity's images are spread over neighbouring ranks,
in both modalities alike, so every rank still has RGB and IR images of the same
identities. All ranks draw the same global epoch from the same seed, so the ranks'
batches are disjoint and their union is the single-process batch.

Draw keys: with ``keyed=True`` each element is ``(index, epoch, draw)`` instead of an
index, ``draw`` being the sample's slot in the global epoch (``batch * 2DK + slot``).
:class:`vireid.inputs.dataset.CacheDataset` seeds its augmentation with these, so an
image drawn twice in one epoch is augmented differently, the epoch needs no
``set_epoch`` on the dataset (persistent workers are fine) and all of it is
independent of ``num_workers`` and of the rank split.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from torch.utils.data import Sampler

from vireid.data.modality import Modality

logger = logging.getLogger(__name__)

Key = Tuple[int, int, int]          # (dataset index, epoch, draw)
#: State entries that may differ between a saved sampler and the one loading it.
RANK_SPLIT_KEYS = ("world_size",)
Item = Union[int, Key]


class SamplerError(ValueError):
    """The data cannot fill the configured batches; the message names the identities at fault."""


@dataclass(frozen=True)
class SamplerConfig:
    """Batch composition (paper: D = 8 identities, K = 4 images per modality, batch 64)."""

    num_ids: int = 8                          # D
    num_per_modality: int = 4                 # K
    batches_per_epoch: Optional[int] = None   # None: ceil(max(#RGB, #IR) / (D * K))

    def __post_init__(self) -> None:
        if self.num_ids < 1 or self.num_per_modality < 1:
            raise ValueError(f"num_ids and num_per_modality must be >= 1, got {self.num_ids}, {self.num_per_modality}")
        if self.batches_per_epoch is not None and self.batches_per_epoch < 1:
            raise ValueError(f"batches_per_epoch must be >= 1, got {self.batches_per_epoch}")

    @property
    def batch_size(self) -> int:
        return 2 * self.num_ids * self.num_per_modality


def missing_modality_ids(pids: Sequence[int], modalities: Sequence[int]) -> Dict[str, List[int]]:
    """Identities lacking RGB (``'rgb'``) or IR (``'ir'``) images."""
    pids = np.asarray(pids)
    mods = np.asarray(modalities)
    rgb, ir = set(pids[mods == Modality.RGB].tolist()), set(pids[mods == Modality.IR].tolist())
    everyone = set(pids.tolist())
    return {"rgb": sorted(everyone - rgb), "ir": sorted(everyone - ir)}


def check_both_modalities(pids: Sequence[int], modalities: Sequence[int]) -> None:
    """Raise :class:`SamplerError` naming every identity with no image of one modality."""
    missing = missing_modality_ids(pids, modalities)
    parts = [f"{len(ids)} identit{'y' if len(ids) == 1 else 'ies'} without {name.upper()} images: {ids[:20]}"
             f"{' ...' if len(ids) > 20 else ''}" for name, ids in missing.items() if ids]
    if parts:
        raise SamplerError("the cross-modality sampler needs every identity in both modalities; "
                           + "; ".join(parts) + " (drop them from the training indices)")


class CrossModalitySampler(Sampler):
    """Batch sampler (``DataLoader(dataset, batch_sampler=sampler)``) of the cross-modality batches.

    Args:
        pids: identity of each dataset position (``len(dataset)`` values).
        modalities: 0 (RGB) / 1 (IR) of each dataset position.
        config: :class:`SamplerConfig`.
        seed: with the epoch, the only source of randomness.
        rank, world_size: this process's share of each global batch (see module docstring).
        keyed: yield ``(index, epoch, draw)`` keys instead of plain indices.
    """

    def __init__(self, pids: Sequence[int], modalities: Sequence[int], config: SamplerConfig = SamplerConfig(),
                 seed: int = 0, rank: int = 0, world_size: int = 1, keyed: bool = False):
        pids_a = np.asarray(pids, dtype=np.int64).reshape(-1)
        mods_a = np.asarray(modalities, dtype=np.int64).reshape(-1)
        if pids_a.shape != mods_a.shape:
            raise ValueError(f"{pids_a.size} pids but {mods_a.size} modality flags")
        if not np.isin(mods_a, list(Modality)).all():
            raise ValueError(f"modality flags must be 0 (RGB) or 1 (IR), got {sorted(set(mods_a.tolist()))}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if (config.num_ids * config.num_per_modality) % world_size:
            raise ValueError(f"num_ids x num_per_modality = {config.num_ids} x {config.num_per_modality} image "
                             f"pairs per batch cannot be split evenly between world_size={world_size} ranks")
        check_both_modalities(pids_a, mods_a)
        self.ids = np.unique(pids_a)                                  # sorted identities
        if self.ids.size < config.num_ids:
            raise SamplerError(f"only {self.ids.size} identities, fewer than num_ids={config.num_ids} per batch")
        self.config = config
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.keyed = bool(keyed)
        # positions of each (identity, modality), in dataset order: pools[m][pid] -> int64 array
        self.pools: Tuple[Dict[int, np.ndarray], Dict[int, np.ndarray]] = ({}, {})
        order = np.argsort(pids_a, kind="stable")
        for m in Modality:
            sel = order[mods_a[order] == m]
            bounds = np.flatnonzero(np.diff(pids_a[sel])) + 1
            for group in np.split(sel, bounds):
                self.pools[m][int(pids_a[group[0]])] = group
        n_rgb, n_ir = int((mods_a == Modality.RGB).sum()), int((mods_a == Modality.IR).sum())
        per_batch = config.num_ids * config.num_per_modality
        self.batches_per_epoch = config.batches_per_epoch or math.ceil(max(n_rgb, n_ir) / per_batch)
        self.epoch = 0
        self.consumed = 0

    # ------------------------------------------------------------------ epoch drawing
    def global_batches(self, epoch: int) -> np.ndarray:
        """All global batches of ``epoch``: ``(batches_per_epoch, 2 * D * K)`` dataset positions."""
        cfg = self.config
        d, k = cfg.num_ids, cfg.num_per_modality
        rng = np.random.default_rng([self.seed, int(epoch)])
        id_deck: List[int] = []
        img_decks: Tuple[Dict[int, List[int]], Dict[int, List[int]]] = ({}, {})
        out = np.empty((self.batches_per_epoch, 2 * d * k), dtype=np.int64)
        for b in range(self.batches_per_epoch):
            chosen: List[int] = []
            deferred: List[int] = []
            while len(chosen) < d:
                if not id_deck:
                    id_deck = rng.permutation(self.ids).tolist()
                pid = id_deck.pop()
                (deferred if pid in chosen else chosen).append(pid)
            id_deck.extend(deferred)                      # popped first in the next batch
            for m in Modality:
                for slot, pid in enumerate(chosen):
                    start = m * d * k + slot * k
                    out[b, start:start + k] = self._draw(pid, m, k, rng, img_decks[m])
        return out

    def _draw(self, pid: int, modality: int, k: int, rng: np.random.Generator,
              decks: Dict[int, List[int]]) -> List[int]:
        pool = self.pools[modality][pid]
        if pool.size < k:                                 # too few images: all of them, then repeats
            return rng.permutation(pool).tolist() + rng.choice(pool, size=k - pool.size).tolist()
        deck = decks.setdefault(pid, [])
        picked: List[int] = []
        while len(picked) < k:
            if not deck:
                deck.extend(rng.permutation(pool).tolist())
            candidate = deck.pop()
            if candidate in picked:                       # deck boundary: never repeat within a batch
                deck.insert(0, candidate)
                continue
            picked.append(candidate)
        return picked

    def local_batch(self, global_batch: np.ndarray) -> np.ndarray:
        """This rank's share of one global batch: its identities' RGB samples, then their IR samples."""
        if self.world_size == 1:
            return global_batch
        dk = self.config.num_ids * self.config.num_per_modality         # RGB slots = IR slots
        per_rank = dk // self.world_size
        lo, hi = self.rank * per_rank, (self.rank + 1) * per_rank
        return np.concatenate([global_batch[lo:hi], global_batch[dk + lo:dk + hi]])

    # ------------------------------------------------------------------ Sampler protocol
    def __iter__(self) -> Iterator[List[Item]]:
        epoch = self.epoch
        batches = self.global_batches(epoch)
        size = batches.shape[1]
        slots = np.arange(size)
        if self.world_size > 1:
            slots = self.local_batch(slots)
        start = self.consumed
        if start:
            logger.info("resuming epoch %d at batch %d of %d", epoch, start, self.batches_per_epoch)
        for b in range(start, self.batches_per_epoch):
            local = self.local_batch(batches[b]).tolist()
            self.consumed = b + 1
            if self.keyed:
                draws = (b * size + slots).tolist()
                yield [(i, epoch, dr) for i, dr in zip(local, draws)]
            else:
                yield local
        self.consumed = 0                                 # a finished epoch starts over if iterated again

    def __len__(self) -> int:
        return self.batches_per_epoch - self.consumed

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to draw; changing it restarts at its first batch."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self.consumed = 0

    @property
    def batch_size(self) -> int:
        """Samples per batch on this rank."""
        return self.config.batch_size // self.world_size

    # ------------------------------------------------------------------ resume
    def _settings(self) -> Dict[str, Any]:
        return {"seed": self.seed, "world_size": self.world_size, "batches_per_epoch": self.batches_per_epoch,
                **asdict(self.config), "num_ids_total": int(self.ids.size)}

    def state_dict(self, consumed: Optional[int] = None) -> Dict[str, Any]:
        """``epoch``, ``consumed`` (batches already used; pass the trainer's count when loading
        ahead with workers) and the settings that must match when loading."""
        used = self.consumed if consumed is None else int(consumed)
        if not 0 <= used <= self.batches_per_epoch:
            raise ValueError(f"consumed={used} is outside [0, {self.batches_per_epoch}]")
        return {"epoch": self.epoch, "consumed": used, **self._settings()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the saved epoch. The settings must match, except ``world_size``: the global
        batches and the count of consumed (global) batches do not depend on the rank split, so
        a run may resume on another number of processes."""
        mine = self._settings()
        diffs = [f"{k}: saved {state.get(k)!r}, now {v!r}" for k, v in mine.items()
                 if k in state and k not in RANK_SPLIT_KEYS and state[k] != v]
        if diffs:
            raise ValueError("sampler state was saved with other settings: " + "; ".join(diffs))
        consumed = int(state["consumed"])
        if not 0 <= consumed <= self.batches_per_epoch:
            raise ValueError(f"saved consumed={consumed} is outside [0, {self.batches_per_epoch}]")
        self.epoch = int(state["epoch"])
        self.consumed = consumed
