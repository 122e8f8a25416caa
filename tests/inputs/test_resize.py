"""The crops' resize filter (vireid.cache.format.resize_crop): anti-aliased like PIL's
LANCZOS, the same for cached crops and for images given to the extractor."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from vireid.inputs.augment import TransformConfig, resize_image
from vireid.cache.format import LEGACY_RESIZE_FILTER, RESIZE_FILTER, resize_crop, resize_filter_of
from vireid.cache.geometry import Geometry


def checkerboard(h: int, w: int) -> np.ndarray:
    y, x = np.indices((h, w))
    return np.repeat((((y + x) % 2) * 255).astype(np.uint8)[:, :, None], 3, axis=2)


def test_checkerboard_shrinks_to_its_mean():
    # 1-pixel squares: the local mean is 127.5 everywhere; a filter that does not widen its
    # kernel when shrinking samples a few pixels and keeps stripes of the pattern (aliasing)
    board = checkerboard(288, 144)
    out = resize_crop(board, (128, 64)).astype(np.float64)
    assert out.shape == (128, 64, 3)
    assert np.abs(out - 127.5).max() <= 4.0
    linear = cv2.resize(board, (64, 128), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    assert np.abs(linear - 127.5).max() > 50                 # the old filter: values 56..199


def test_equals_pil_lanczos_and_keeps_shapes():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 30, 3), dtype=np.uint8)
    want = np.asarray(Image.fromarray(image).resize((16, 40), Image.LANCZOS))
    np.testing.assert_array_equal(resize_crop(image, (40, 16)), want)
    assert resize_crop(image[:, :, :1], (40, 16)).shape == (40, 16, 1)
    assert resize_crop(image[:, :, 0], (40, 16)).shape == (40, 16)
    assert resize_crop(image, (50, 30)) is image                  # already the size: untouched
    with pytest.raises(ValueError, match="uint8"):
        resize_crop(image.astype(np.float32), (40, 16))


def test_extractor_resize_is_the_cache_filter():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (100, 40, 3), dtype=np.uint8)
    cfg = TransformConfig(Geometry((32, 16), 4))
    np.testing.assert_array_equal(resize_image(image, cfg), resize_crop(image, (32, 16)))


def test_filter_of_old_and_new_attributes():
    assert resize_filter_of({"resize_filter": RESIZE_FILTER}) == RESIZE_FILTER == "pil-lanczos"
    assert resize_filter_of({}) == LEGACY_RESIZE_FILTER == "linear (made before the filter was recorded)"
