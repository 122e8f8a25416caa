"""vireid-export: TorchScript always, ONNX where onnxruntime is installed; each checked here
against eager PyTorch on random inputs (not only by the command's own check)."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.inference.helpers import assert_help_mentions
from vireid.cli.export import cli
from vireid.model.checkpoint import build_model_from_checkpoint
from vireid.model.pcb import stripe_pool, stripe_pool_sliced


def _random_inputs(model, batch: int = 5, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, *model.config.input_size, generator=g)
    modality = torch.tensor([1, 0, 0, 1, 1][:batch])
    with torch.no_grad():
        eager = model.eval()(images, modality)
    return images, modality, eager


def test_help():
    assert_help_mentions(cli, "--checkpoint", "--format", "torchscript", "onnx", "--out", "--check", "modality",
                         "f_all", "1e-4")


def test_torchscript_matches_eager(trained, tmp_path):
    out = tmp_path / "net.ts"
    res = CliRunner().invoke(cli, ["--checkpoint", str(trained.checkpoint), "--format", "torchscript",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "checked against eager PyTorch" in res.output
    model, _ = build_model_from_checkpoint(trained.checkpoint)
    images, modality, eager = _random_inputs(model)
    extra = {"vireid.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(out), _extra_files=extra)
    with torch.no_grad():
        f_id, f_all = module(images, modality)
    assert (f_id - eager["f_id"]).abs().max() < 1e-4 and (f_all - eager["f_all"]).abs().max() < 1e-4
    meta = json.loads(extra["vireid.json"])
    assert meta["input_size"] == list(model.config.input_size) and meta["modality"] == {"rgb": 0, "ir": 1}
    # the stems really differ: the same images as the other modality give other features
    with torch.no_grad():
        swapped = module(images, 1 - modality)[0]
    assert (swapped - f_id).abs().max() > 1e-3


def test_onnx_matches_eager(trained, tmp_path):
    pytest.importorskip("onnxruntime", reason="the onnx extra (pip install 'vireid[onnx]') is not installed")
    import onnxruntime as ort

    out = tmp_path / "net.onnx"
    res = CliRunner().invoke(cli, ["--checkpoint", str(trained.checkpoint), "--format", "onnx", "--out", str(out)])
    assert res.exit_code == 0, res.output
    model, _ = build_model_from_checkpoint(trained.checkpoint)
    images, modality, eager = _random_inputs(model, batch=4)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    f_id, f_all = session.run(["f_id", "f_all"], {"images": images.numpy(), "modality": modality.numpy()})
    assert np.abs(f_id - eager["f_id"].numpy()).max() < 1e-4
    assert np.abs(f_all - eager["f_all"].numpy()).max() < 1e-4
    props = session.get_modelmeta().custom_metadata_map
    assert json.loads(props["input_size"]) == list(model.config.input_size)


def test_onnx_with_stripes_of_unequal_height(tmp_path):
    """At 128x64 the ReID maps are 8 rows for 6 stripes (overlapping adaptive bins, which ONNX
    lacks): the export pools them by slices and still matches eager PyTorch."""
    pytest.importorskip("onnxruntime", reason="the onnx extra (pip install 'vireid[onnx]') is not installed")
    import onnxruntime as ort

    from tests.model.helpers import small_config
    from vireid.inference.export import export_model
    from vireid.model import PoseVIReIDNet

    torch.manual_seed(0)
    model = PoseVIReIDNet(small_config("baseline", input_size=(128, 64), stripe_dim=16)).eval()
    export_model(model, tmp_path / "net.onnx", "onnx")
    images, modality, eager = _random_inputs(model, batch=3)
    session = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    f_id, _ = session.run(["f_id", "f_all"], {"images": images.numpy(), "modality": modality.numpy()})
    assert np.abs(f_id - eager["f_id"].numpy()).max() < 1e-4


def test_sliced_stripes_equal_adaptive_pooling():
    """ONNX export pools stripes by slices when the height is not a multiple of the stripes."""
    x = torch.randn(2, 5, 8, 3)
    for stripes in (6, 3, 8, 5):
        torch.testing.assert_close(stripe_pool_sliced(x, stripes), stripe_pool(x, stripes), atol=1e-6, rtol=0)


def test_bad_checkpoint_is_one_line(tmp_path):
    res = CliRunner().invoke(cli, ["--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.ts")])
    assert res.exit_code == 1 and "checkpoint not found" in res.output and "Traceback" not in res.output
