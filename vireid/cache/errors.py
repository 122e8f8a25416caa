"""Errors of the heatmap cache (re-exported by :mod:`vireid.cache.format` and
:mod:`vireid.cache.reader`); here so that every module of the format can raise them."""
from __future__ import annotations


class CacheError(RuntimeError):
    """A cache is missing, incomplete, corrupt or incompatible; the message says which."""


class DamagedRowError(CacheError):
    """A row's bytes differ from its checksum or cannot be read; the message names the
    shard, the row and the source image."""
