"""GCCPM: the golden checkpoint loads strictly and reproduces every stage; loading errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vireid.pose.codec import prepare_input
from vireid.pose.gccpm import (GCCPM, CheckpointMismatchError, RefinementStage, RefinementStageBlock,
                               UShapedContextBlock, load_gccpm_checkpoint, num_stages_in)
from vireid.io import file_sha256


@pytest.fixture(scope="module")
def golden(golden_dir):
    return golden_dir / "lip_gccpm_2stage.pth", np.load(golden_dir / "lip_gccpm_2stage.npz")


def test_golden_stages_reproduced(golden):
    pth, npz = golden
    model = load_gccpm_checkpoint(pth)
    assert len(model.refinement_stages) == 2                      # inferred from the keys
    with torch.no_grad():
        stages = model(torch.from_numpy(npz["input"]))
    assert len(stages) == 3
    for i, out in enumerate(stages):
        assert out.shape == (1, 17, 32, 32) and out.dtype == torch.float32
        np.testing.assert_allclose(out.numpy(), npz[f"stage{i}"], atol=1e-4, rtol=0)


def _save(tmp_path, sd, name="ck.pth", wrap=True):
    path = tmp_path / name
    torch.save({"state_dict": sd} if wrap else sd, path)
    return path


def test_mismatches_are_listed(golden, tmp_path):
    sd = torch.load(golden[0], map_location="cpu")["state_dict"]
    broken = dict(sd)
    del broken["cpm.0.0.weight"]
    broken["extra.weight"] = torch.zeros(1)
    broken["cpm.1.0.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointMismatchError) as ei:
        load_gccpm_checkpoint(_save(tmp_path, broken))
    msg = str(ei.value)
    assert "missing keys (1): cpm.0.0.weight" in msg
    assert "unexpected keys (1): extra.weight" in msg
    assert "cpm.1.0.bias: checkpoint (7,), network (128,)" in msg
    assert "ck.pth" in msg
    with pytest.raises(CheckpointMismatchError, match="missing keys"):
        load_gccpm_checkpoint(golden[0], num_refinement_stages=3)


def test_module_prefix_and_plain_state_dict(golden, tmp_path):
    sd = torch.load(golden[0], map_location="cpu")["state_dict"]
    plain = _save(tmp_path, {f"module.{k}": v for k, v in sd.items()}, wrap=False)
    model = load_gccpm_checkpoint(plain)
    assert len(model.refinement_stages) == 2
    with pytest.raises(CheckpointMismatchError, match="not found"):
        load_gccpm_checkpoint(tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(CheckpointMismatchError, match="not a readable"):
        load_gccpm_checkpoint(tmp_path / "junk.pth")
    assert len(file_sha256(golden[0])) == 64


def test_refinement_stage_features_and_heatmaps():
    torch.manual_seed(0)
    stage = RefinementStage(145, 128, 17).eval()
    x = torch.randn(2, 145, 18, 10)
    with torch.no_grad():
        feats, maps = stage.forward_with_features(x)
        assert feats.shape == (2, 128, 18, 10) and maps.shape == (2, 17, 18, 10)
        torch.testing.assert_close(stage(x), maps)


def test_loaded_weights_are_float32_and_buffers_kept(golden):
    model = load_gccpm_checkpoint(golden[0])
    sd = torch.load(golden[0], map_location="cpu")["state_dict"]
    assert all(v.dtype == torch.float16 for v in sd.values() if v.is_floating_point())   # stored as fp16
    own = model.state_dict()
    assert all(v.dtype == torch.float32 for v in own.values() if v.is_floating_point())
    key = "cpm.0.1.running_var"                                                         # BN statistics loaded
    torch.testing.assert_close(own[key], sd[key].float())
    assert not model.training


def test_stage_count_is_inferred(tmp_path):
    torch.manual_seed(0)
    sd = GCCPM(num_refinement_stages=5).state_dict()
    assert num_stages_in(sd) == 5 and num_stages_in({"cpm.0.0.weight": torch.zeros(1)}) == 0
    model = load_gccpm_checkpoint(_save(tmp_path, sd))
    assert len(model.refinement_stages) == 5
    torch.testing.assert_close(model.state_dict()["refinement_stages.4.heatmaps.1.0.bias"],
                               sd["refinement_stages.4.heatmaps.1.0.bias"])


def test_not_a_state_dict_is_rejected(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save({"state_dict": {"a": 3}}, path)
    with pytest.raises(CheckpointMismatchError, match="odd.pth: not a GCCPM checkpoint"):
        load_gccpm_checkpoint(path)


def test_refinement_stage_structure_and_paths():
    torch.manual_seed(0)
    stage = RefinementStage(145, 128, 17).eval()
    assert isinstance(stage.trunk[0], UShapedContextBlock)
    assert all(isinstance(b, RefinementStageBlock) for b in stage.trunk[1:]) and len(stage.trunk) == 4
    x = torch.randn(1, 145, 24, 12)                               # H, W divisible by 4, like 72x36
    with torch.no_grad():
        u = stage.trunk[0](x)
        assert u.shape == x.shape                                 # the U-shaped block keeps C, H, W
        feats, maps = stage.forward_with_features(x)
        torch.testing.assert_close(feats, stage.trunk[1:](u))
        torch.testing.assert_close(maps, stage.heatmaps(feats))
    block = RefinementStageBlock(145, 128).eval()
    with torch.no_grad():
        init = block.initial(x)
        torch.testing.assert_close(block(x), init + block.trunk(init))   # the residual


def test_golden_input_is_what_prepare_input_makes(golden):
    """The golden input is a 256x128 uint8 crop padded with zeros: prepare_input rebuilds it exactly."""
    x = golden[1]["input"][0]                                      # (3, 256, 256)
    pixels = x * 256 + 128
    assert np.all(x[:, :, :64] == 0) and np.all(x[:, :, 192:] == 0)
    np.testing.assert_array_equal(pixels, np.round(pixels))       # integer BGR values
    crop = pixels[:, :, 64:192].transpose(1, 2, 0).astype(np.uint8)
    x, fit = prepare_input(crop, 256)                             # already 256 rows: no resampling
    assert fit.cells(8) == (0, 32, 8, 24)                          # columns 64..191 hold the crop
    np.testing.assert_array_equal(x[None], golden[1]["input"])
