"""GCCPM: the golden checkpoint loads strictly and reproduces every stage; loading errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vireid.pose.gccpm import (GCCPM, CheckpointMismatchError, RefinementStage, decode_crop_maps,
                               file_sha256, load_gccpm_checkpoint, prepare_crop)


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


def test_prepare_crop_pads_a_2to1_crop_and_maps_back():
    img = np.full((288, 144, 3), 200, np.uint8)
    t, tr = prepare_crop(img, 256)
    assert t.shape == (1, 3, 256, 256)
    assert tr.pad_left == 64 and tr.resized_w == 128
    assert float(t[0, 0, 10, 10]) == 0.0                             # padding is 0 after normalisation
    assert float(t[0, 0, 10, 100]) == pytest.approx((200 - 128) / 256)
    # a peak at map cell (row 20, col 11) of the 32x32 stride-8 map -> crop pixels
    maps = np.zeros((16, 32, 32), np.float32)
    maps[3, 20, 11] = 0.9
    xy, score = decode_crop_maps(maps, tr)
    cx, cy = 11 * 8 + 3.5, 20 * 8 + 3.5                              # cell centre, network pixels
    np.testing.assert_allclose(xy[3], [(cx - 64 + 0.5) / (128 / 144) - 0.5, (cy + 0.5) / (256 / 288) - 0.5],
                               atol=1e-4)
    assert score[3] == pytest.approx(0.9)


def test_peaks_in_the_padding_are_ignored():
    _, tr = prepare_crop(np.zeros((256, 128, 3), np.uint8), 256)
    maps = np.zeros((16, 32, 32), np.float32)
    maps[:, 5, 2] = 1.0                                               # column 2: padding
    maps[:, 9, 12] = 0.5                                              # inside the crop
    xy, score = decode_crop_maps(maps, tr)
    assert np.all(score == 0.5)
    assert np.all(xy[:, 0] >= 0)
