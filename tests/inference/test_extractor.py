"""vireid.FeatureExtractor on a tiny trained checkpoint and its synthetic SYSU-MM01 tree."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from vireid.data.images import load_image
from vireid.inference.extractor import ExtractorError, FeatureExtractor, as_items, is_grey, modality_code


@pytest.fixture(scope="module")
def records(trained):
    """Test images of both modalities."""
    rgb = trained.manifest.select(split=["test"], modality="rgb")[:5]
    ir = trained.manifest.select(split=["test"], modality="ir")[:4]
    return rgb + ir


@pytest.mark.parametrize("flip", [False, True])
def test_features_are_those_vireid_eval_uses(trained, records, flip):
    """Same preprocessing as the heatmap cache + vireid-eval: the features of the source
    images equal those of the cached crops (then L2-normalised) to float precision."""
    from vireid.cache.reader import HeatmapCache
    from vireid.model.checkpoint import build_model_from_checkpoint
    from vireid.evaluation.features import extract_features

    ex = FeatureExtractor(trained.checkpoint, device="cpu", feature="f_all", flip=flip, batch_size=4)
    got = ex(records, root=trained.root)
    model, _ = build_model_from_checkpoint(trained.checkpoint)
    cache = HeatmapCache(trained.cache)
    ref = extract_features(model, cache, [cache.index_of(r.path) for r in records], flip=flip)["f_all"]
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    assert got.shape == (len(records), model.feature_dim["f_all"]) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_paths_arrays_and_manifest_agree(trained, records):
    ex = FeatureExtractor(trained.checkpoint, device="cpu", feature="f_id", flip=False, batch_size=3)
    by_record = ex(records, root=trained.root)
    paths = [str(trained.root / r.path) for r in records]
    mods = [r.modality for r in records]
    np.testing.assert_allclose(ex(paths, modality=mods), by_record, atol=1e-6)
    arrays = [load_image(trained.root / r.path)[0] for r in records]
    # IR crops as 2-D grey arrays
    arrays = [a[:, :, 0] if r.modality == "ir" else a for a, r in zip(arrays, records)]
    np.testing.assert_allclose(ex(arrays, modality=mods), by_record, atol=1e-6)
    # modality auto: the synthetic IR crops are grey, the RGB ones are not
    np.testing.assert_allclose(ex(paths), by_record, atol=1e-6)
    # one image alone gives its row (batches change nothing)
    np.testing.assert_allclose(ex(paths[-1], modality="ir")[0], by_record[-1], atol=1e-5)
    # a manifest: every record, in the manifest's (path) order, under its root
    from vireid.data.manifest import Manifest

    small = Manifest(dataset="sysu", root=str(trained.root), records=list(records))
    whole = ex(small)
    np.testing.assert_allclose(whole, by_record[np.argsort([r.path for r in records])], atol=1e-5)


def test_the_modality_picks_the_stem(trained, records):
    ex = FeatureExtractor(trained.checkpoint, device="cpu", flip=False)
    path = str(trained.root / records[0].path)
    as_rgb, as_ir = ex([path, path], modality=["rgb", "ir"])
    assert np.abs(as_rgb - as_ir).max() > 1e-3


def test_modality_codes_and_grey_detection():
    assert modality_code("RGB") == 0 and modality_code("thermal") == 1 and modality_code(1) == 1
    assert modality_code(None) is None and modality_code("auto") is None
    with pytest.raises(ExtractorError, match="unknown modality"):
        modality_code("depth")
    grey = np.full((8, 4, 3), 77, np.uint8)
    colour = grey.copy()
    colour[..., 2] = 200
    assert is_grey(grey) and not is_grey(colour)
    assert [it.modality for it in as_items([grey, colour])] == [None, None]
    with pytest.raises(ExtractorError, match="2 modalities given for 1 images"):
        as_items([grey], modality=["rgb", "ir"])


def test_user_errors_name_the_problem(trained, tmp_path):
    with pytest.raises(ExtractorError, match="feature must be one of"):
        FeatureExtractor(trained.checkpoint, device="cpu", feature="f_p")
    ex = FeatureExtractor(trained.checkpoint, device="cpu")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ExtractorError, match="broken.jpg: cannot be decoded"):
        ex(str(bad))
    with pytest.raises(ExtractorError, match="must be uint8"):
        ex(np.zeros((8, 4, 3), np.float32))
    with pytest.raises(ExtractorError, match="needs root="):
        ex(trained.manifest.records[:1])


def test_top_level_import_is_lazy():
    """``import vireid`` loads no torch and no submodule; ``vireid.FeatureExtractor`` imports it."""
    code = ("import sys, vireid; assert 'torch' not in sys.modules and 'vireid.inference' not in sys.modules; "
            "from vireid.inference.extractor import FeatureExtractor as F; assert vireid.FeatureExtractor is F; "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    import vireid

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        vireid.Nope  # noqa: B018


def test_channels_last_features_equal_and_model_given_back(trained, records):
    """vireid-eval extracts in channels-last memory format (faster on a CPU): the same
    features to float32 rounding, and the model is left in its contiguous layout."""
    import torch

    from vireid.cache.reader import HeatmapCache
    from vireid.model.checkpoint import build_model_from_checkpoint
    from vireid.evaluation.features import extract_features

    model, _ = build_model_from_checkpoint(trained.checkpoint)
    cache = HeatmapCache(trained.cache)
    indices = [cache.index_of(r.path) for r in records]
    plain = extract_features(model, cache, indices, batch_size=4)
    nhwc = extract_features(model, cache, indices, batch_size=4, channels_last=True)
    for k in plain:
        np.testing.assert_allclose(nhwc[k], plain[k], rtol=1e-4, atol=1e-5)
    conv = model.modality_specific.rgb.conv1.weight
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)
