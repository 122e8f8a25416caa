"""vireid.cache.geometry: one geometry (input size, stride, heatmap size), read from cache.json, one check."""
from __future__ import annotations

import re

import numpy as np
import pytest

from vireid.cache.format import CacheConfig, cache_attributes
from vireid.cache.errors import CacheError
from vireid.cache.geometry import PAPER, Geometry

SOURCE = "/caches/sysu/cache.json"


def test_heatmap_size_is_input_over_stride_and_inputs_must_be_multiples():
    assert PAPER == Geometry((288, 144), 4) and PAPER.heatmap_size == (72, 36)
    assert Geometry([96, 48], np.int64(8)) == Geometry((96, 48), 8)          # YAML lists, numpy ints
    assert Geometry((96, 48), 8).heatmap_size == (12, 6)
    with pytest.raises(ValueError, match="input size 30x16 is not a positive multiple of the stride 4"):
        Geometry((30, 16), 4)
    for bad in [((288,), 4), ((288, 144), 0), ((288.0, 144), 4), ((288, 144), True)]:
        with pytest.raises(ValueError):
            Geometry(*bad)


def test_cache_json_records_it_and_from_attrs_reads_it_back():
    attrs = cache_attributes(CacheConfig(input_size=(64, 32), stride=8), {}, "h", "sysu", 1)
    assert (attrs["input_size"], attrs["heatmap_size"], attrs["stride"]) == ([64, 32], [8, 4], 8)
    assert Geometry.from_attrs(attrs, SOURCE) == Geometry((64, 32), 8) == CacheConfig(input_size=(64, 32),
                                                                                       stride=8).geometry


@pytest.mark.parametrize("attrs, words", [
    ({"input_size": [64, 32], "stride": 4}, "no heatmap_size"),
    ({"heatmap_size": [16, 8]}, "no input_size, stride"),
    ({"input_size": [64, 30], "stride": 4, "heatmap_size": [16, 7]}, "not a positive multiple"),
    ({"input_size": [64, 32], "stride": 4, "heatmap_size": [8, 4]}, r"heatmap_size \[8, 4\] is not input_size / stride"),
])
def test_missing_or_inconsistent_attributes_name_cache_json(attrs, words):
    with pytest.raises(CacheError, match=rf"^{re.escape(SOURCE)}: .*{words}.*rebuild the cache"):
        Geometry.from_attrs(attrs, SOURCE)


def test_equal_geometries_pass_the_check():
    Geometry((96, 48), 4).check(Geometry([96, 48], 4), SOURCE)


def _message(cache: Geometry, configured: Geometry) -> str:
    with pytest.raises(CacheError) as info:
        cache.check(configured, SOURCE)
    return str(info.value)


def test_an_input_size_mismatch_is_one_message_with_both_sizes_and_the_fix():
    msg = _message(Geometry((96, 48), 4), Geometry((128, 64), 4))
    assert msg == (f"{SOURCE}: input_size 96x48 differs from the configured data.input_size 128x64 (heatmaps 24x12 "
                   "in the cache, 32x16 configured): set data.input_size=[96, 48] to train on this cache, or rebuild "
                   "it with `vireid-prep heatmaps --input-size 128x64 --stride 4`")


def test_a_stride_mismatch_is_one_message_with_both_strides_and_heatmap_sizes():
    msg = _message(Geometry((96, 48), 8), Geometry((96, 48), 4))
    assert msg == (f"{SOURCE}: stride 8 differs from the configured data.stride 4 (heatmaps 12x6 in the cache, "
                   "24x12 configured): set data.stride=8 to train on this cache, or rebuild it with "
                   "`vireid-prep heatmaps --input-size 96x48 --stride 4`")


def test_both_differing_are_named_in_the_same_one_message():
    msg = _message(Geometry((96, 48), 8), Geometry((128, 64), 4))
    assert "\n" not in msg and msg.startswith(SOURCE)
    assert "input_size 96x48 differs from the configured data.input_size 128x64 and stride 8 differs" in msg
    assert "set data.input_size=[96, 48] data.stride=8" in msg and "--input-size 128x64 --stride 4" in msg
