"""Grad-CAM (vireid.inference.gradcam) and its picture (gradcam_figure): hand-computed values,
the peak on the only informative region, the hooks against a manual forward."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tests.model.helpers import INPUT_HW, small_config
from vireid.inference.gradcam import (body_box, explain, grad_cam, mask_map, normalise_maps, on_body, resolve_scores,
                                      score_of, upsample)
from vireid.inference.gradcam_job import summarise
from vireid.inference.gradcam_figure import (BORDER, GREY, HEADER, PAD, ROW_TITLE, Cell, Row, cell_size,
                                             figure_size, render)
from vireid.model import PoseVIReIDNet
from vireid.model.pcb import concat_normalized

H, W = 64, 32
REGION = (slice(8, 24), slice(4, 16))           # rows 8-23, columns 4-15: the red patch


def _scene() -> torch.Tensor:
    """[1, 3, 64, 32] RGB: a red patch in REGION, a larger green block (the distractor) below it,
    black elsewhere."""
    img = torch.zeros(1, 3, H, W)
    img[0, 0, REGION[0], REGION[1]] = 1.0
    img[0, 1, 36:60, 2:30] = 1.0
    return img


class ColourDetector(nn.Module):
    """[B, 3, H, W] -> [B, C, H/4, W/4]: channel 0 = red, channel 1 = green (mean over 4x4 cells);
    the other channels are 0. A modality argument is accepted and ignored."""

    def __init__(self, channels: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 1.0
            self.conv.weight[1, 1] = 1.0
        self.pool = nn.AvgPool2d(4)

    def forward(self, x: torch.Tensor, modality: torch.Tensor = None) -> torch.Tensor:
        return self.pool(torch.relu(self.conv(x)))


def _mass_outside(cam: np.ndarray, margin: int = 0) -> float:
    """Share of the map's mass outside REGION grown by ``margin`` pixels (on_body's share, whose
    own hand-computed case is test_on_body_hand_computed)."""
    box = (max(REGION[0].start - margin, 0), max(REGION[1].start - margin, 0),
           REGION[0].stop + margin, REGION[1].stop + margin)
    return 1.0 - on_body(cam, None, box)["cam_share"]


def _assert_on_region(cam: np.ndarray) -> None:
    """The peak inside REGION; outside it only the fringe of the bilinear upsampling from 4x4
    cells (which reaches at most one cell, 4 px, beyond the patch's cells): here 14 % of the mass."""
    peak = np.unravel_index(int(np.argmax(cam)), cam.shape)
    assert REGION[0].start <= peak[0] < REGION[0].stop and REGION[1].start <= peak[1] < REGION[1].stop, peak
    assert _mass_outside(cam) < 0.2, _mass_outside(cam)
    assert _mass_outside(cam, margin=4) < 1e-6, _mass_outside(cam, margin=4)


def test_grad_cam_hand_computed():
    # score = sum(a * A) is linear: d score / dA = a, alpha_c = mean_ij a_c
    act = torch.tensor([[[[1.0, 2.0], [0.0, 1.0]], [[3.0, 0.0], [1.0, 1.0]]]], requires_grad=True)   # [1, 2, 2, 2]
    a = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]], [[-2.0, 0.0], [0.0, 0.0]]]])      # alpha = (1, -0.5)
    cam = grad_cam(act, (a * act).sum(dim=(1, 2, 3)))
    expected = np.maximum(1.0 * np.array([[1, 2], [0, 1]]) - 0.5 * np.array([[3, 0], [1, 1]]), 0)
    np.testing.assert_allclose(cam.detach().numpy()[0], expected)          # [[0, 2], [0, 0.5]]
    maps = normalise_maps(torch.tensor([[[0.0, 2.0], [0.0, 0.5]], [[0.0, 0.0], [0.0, 0.0]]]))
    np.testing.assert_allclose(maps.numpy(), [[[0, 1], [0, 0.25]], [[0, 0], [0, 0]]])   # a zero map stays zero
    with pytest.raises(ValueError, match="score"):
        grad_cam(act, act.sum())


@pytest.mark.parametrize("channel, region", [(0, "red"), (1, "green")])
def test_map_peaks_on_the_only_region_the_score_reads(channel, region):
    # both colours excite a channel everywhere they are; the score reads channel `channel` only,
    # so the map must follow the score, not merely where something is active
    img = _scene()
    act = ColourDetector()(img)                                       # [1, 2, 16, 8]
    score = act[:, channel].mean(dim=(1, 2))                          # [1]
    cam = normalise_maps(upsample(grad_cam(act, score), (H, W))).detach().numpy()[0]
    if region == "red":
        _assert_on_region(cam)
    else:
        peak = np.unravel_index(int(np.argmax(cam)), cam.shape)
        assert 36 <= peak[0] < 60 and cam[REGION].max() == 0.0        # the red patch gets nothing


def _hand_built_reid_model() -> PoseVIReIDNet:
    """A baseline PoseVIReIDNet whose trunk is the colour detector and whose stripe heads read
    channel 0 (red) only, with positive weights: the 'norm' score depends on the red patch only."""
    model = PoseVIReIDNet(small_config("baseline", num_stripes=2, stripe_dim=4))
    c4 = model.reid_branch.out_channels
    model.modality_specific = ColourDetector(c4)
    model.modality_shared = nn.Identity()
    model.reid_branch = nn.Identity()
    with torch.no_grad():
        for head in model.reid_pcb.stripes:
            head.embed[0].weight.zero_()
            head.embed[0].weight[:, 0] = 1.0
            head.embed[0].bias.zero_()
    return model.eval()


def test_explain_peaks_on_the_informative_region():
    model = _hand_built_reid_model()
    exp = explain(model, _scene(), torch.tensor([0]), score="norm")
    cam = exp.cam[0]
    assert exp.kinds == ["norm"] and exp.mask is None and cam.shape == (H, W)
    assert cam.max() == pytest.approx(1.0) and cam.min() >= 0
    _assert_on_region(cam)
    # 2 stripes x ||(1, 1, 1, 1) * mean red of the stripe|| / sqrt(1 + BN eps): stripe 0 holds the patch
    red = _scene()[0, 0]
    expected = sum(2.0 * float(red[r].mean()) for r in (slice(0, 32), slice(32, 64))) / np.sqrt(1 + 1e-5)
    assert exp.score[0] == pytest.approx(expected, rel=1e-4)


def test_scores_resolved_per_image():
    assert resolve_scores("auto", [3, -1, -1], [False, True, False]) == ["logit", "cross", "norm"]
    with pytest.raises(ValueError, match="training class"):
        resolve_scores("logit", [-1], [True])
    with pytest.raises(ValueError, match="reference"):
        resolve_scores("cross", [2], [False])
    emb = torch.tensor([[[3.0, 4.0], [0.0, 1.0]]])                            # [1, P=2, E=2]
    logits = torch.tensor([[[1.0, 2.0, 5.0], [0.5, 0.25, -1.0]]])             # [1, 2, N=3]
    ref = torch.tensor([[0.6, 0.8, 0.0, 1.0]])
    assert score_of(["logit"], emb, logits, [2], None).item() == pytest.approx(4.0)
    assert score_of(["norm"], emb, logits, [-1], None).item() == pytest.approx(6.0)
    # f_ID = (0.6, 0.8, 0, 1) / |.| and ref the same direction: cosine 1
    assert score_of(["cross"], emb, logits, [-1], ref).item() == pytest.approx(1.0)


def _manual(model: PoseVIReIDNet, images: torch.Tensor, modality: torch.Tensor, ref: torch.Tensor):
    """Fig. 2 by hand (no hooks): Grad-CAM on the masked f_id of the 'cross' score, and the mask."""
    f_s = model.modality_shared(model.modality_specific(images, modality))
    f_id2 = model.reid_branch(f_s)
    f_p = model.pose_branch(f_s).features
    f_id = f_id2 * torch.sigmoid(f_p)
    score = torch.nn.functional.cosine_similarity(concat_normalized(model.reid_pcb(f_id).embeddings), ref, dim=1)
    g = torch.autograd.grad(score.sum(), f_id)[0]
    cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * f_id).sum(1))
    return normalise_maps(upsample(cam, INPUT_HW)), upsample(torch.sigmoid(f_p).mean(1), INPUT_HW), score


def test_hooks_match_a_manual_forward_of_the_full_model():
    torch.manual_seed(0)
    model = PoseVIReIDNet(small_config("full", stripe_dim=16, pose_channels=32, deconv_channels=16,
                                       refine_channels=16, teacher_dim=16)).eval()
    images = torch.randn(2, 3, *INPUT_HW)
    modality = torch.tensor([0, 1])
    ref = torch.nn.functional.normalize(torch.randn(2, model.feature_dim["f_id"]), dim=1)
    exp = explain(model, images, modality, score="auto", reference=ref)
    cam, mask, score = _manual(model, images, modality, ref)
    assert exp.kinds == ["cross", "cross"]
    np.testing.assert_allclose(exp.cam, cam.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(exp.mask, mask.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(exp.score, score.detach().numpy(), atol=1e-6)
    assert 0.0 < exp.mask.min() and exp.mask.max() < 1.0
    assert not any(p.grad is not None for p in model.parameters())        # no gradient left behind
    # the unmasked layer gives another map; the model's hooks are all removed afterwards
    other = explain(model, images, modality, score="norm", layer="f_id2")
    assert other.cam.shape == exp.cam.shape and not np.allclose(other.cam, exp.cam)
    assert not model.reid_pcb._forward_pre_hooks and not model.reid_branch._forward_hooks
    np.testing.assert_allclose(mask_map(torch.zeros(1, 3, 2, 2)).numpy(), 0.5)


def test_picture_geometry_and_grey_mask_cell():
    ch, cw = cell_size(INPUT_HW, 96)
    assert (ch, cw) == (96, 48)
    assert figure_size(2, ch, cw) == (2 * 6 + 22 + 2 * (20 + 96) + 4, 2 * 6 + 6 * 48 + 4 * 4 + 16)
    img = np.zeros((*INPUT_HW, 3), np.uint8)
    cam = np.zeros(INPUT_HW, np.float32)
    cam[10:20, 10:20] = 1.0
    rows = [Row("baseline", Cell(img, cam, None), Cell(missing="no IR image")),
            Row("full", Cell(img, cam, np.full(INPUT_HW, 0.6, np.float32)), Cell(img, cam, None))]
    pic = render(rows, INPUT_HW, cell_height=96)
    assert pic.shape == (*figure_size(2, ch, cw), 3)
    y0 = BORDER + HEADER + ROW_TITLE                                   # first row's cells
    x_mask = BORDER + 2 * (cw + PAD)
    assert tuple(pic[y0 + 2, x_mask + 2]) == GREY                      # baseline: no pose branch
    assert tuple(pic[y0 + 2, BORDER + 2]) == (0, 0, 0)                 # the black crop itself
    # the Grad-CAM cell, half black crop and half JET: 1 -> dark red (0, 0, 128), 0 -> dark blue (128, 0, 0)
    x_cam = BORDER + cw + PAD
    assert tuple(pic[y0 + 15, x_cam + 15]) == (0, 0, 64)
    assert tuple(pic[y0 + 40, x_cam + 40]) == (64, 0, 0)


def test_body_box_hand_computed():
    kp = np.full((16, 2), np.nan, np.float32)
    conf = np.zeros(16, np.float32)
    kp[0], kp[1], kp[2] = (10.0, 20.0), (30.0, 100.0), (25.0, 60.0)   # (x, y): x 10..30, y 20..100
    conf[:3] = (0.9, 0.6, 0.5)
    kp[3], conf[3] = (0.0, 0.0), 0.4                                   # under the confidence bar: left out
    # margins 10% of 20 = 2 px per side, 5% of 80 = 4 px: y 16..104 (+1, exclusive), x 8..32 (+1)
    assert body_box(kp, conf, (128, 64)) == (16, 8, 105, 33)
    # clipped to the crop
    assert body_box(kp, conf, (90, 30)) == (16, 8, 90, 30)
    conf[1:] = 0.0                                                      # one joint: no box
    assert body_box(kp, conf, (128, 64)) is None


def test_on_body_hand_computed():
    cam = np.zeros((4, 4), np.float32)
    cam[0, 0], cam[1, 1], cam[3, 3] = 1.0, 2.0, 1.0                    # mass 4, 3 of it in rows 0-1 x cols 0-1
    box = (0, 0, 2, 2)                                                   # 4 of 16 pixels
    mask = np.full((4, 4), 0.4, np.float32)
    mask[:2, :2] = 0.6
    got = on_body(cam, mask, box)
    assert got["area"] == pytest.approx(0.25) and got["cam_share"] == pytest.approx(0.75)
    assert got["lift"] == pytest.approx(3.0) and got["mask_contrast"] == pytest.approx(0.2)
    assert "mask_contrast" not in on_body(cam, None, box)
    flat = on_body(np.zeros((4, 4)), np.full((4, 4), 0.5), (0, 0, 4, 4))
    assert flat["cam_share"] is None and flat["lift"] is None        # no evidence anywhere: not 0, not chance
    assert flat["mask_contrast"] is None                              # the box is the whole crop: no outside


def test_summary_counts_all_zero_maps_apart():
    def image(value, share, contrast=None):
        body = {"box_yx": [0, 0, 2, 2], "area": 0.25, "cam_share": share, "lift": None if share is None else share * 4}
        if contrast is not None:
            body["mask_contrast"] = contrast
        return {"score": "cross", "value": value, "body": body}

    records = [{"models": [{"role": "baseline", "rgb": image(0.2, 0.5), "ir": image(-0.4, None)},
                           {"role": "full", "rgb": image(0.6, 0.75, 0.02), "ir": image(0.4, 0.25, -0.01)}]}]
    got = summarise(records)
    assert got["baseline"]["images"] == 1 and got["baseline"]["zero_maps"] == 1
    assert got["baseline"]["cam_share"] == pytest.approx(0.5) and got["baseline"]["lift"] == pytest.approx(2.0)
    assert got["baseline"]["score"] == pytest.approx(-0.1)                  # the score of every image
    assert "mask_contrast" not in got["baseline"]
    assert got["full"]["images"] == 2 and got["full"]["zero_maps"] == 0
    assert got["full"]["cam_share"] == pytest.approx(0.5) and got["full"]["mask_contrast"] == pytest.approx(0.005)
