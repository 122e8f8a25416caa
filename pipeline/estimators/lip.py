"""The ``lip`` estimator: GCCPM (the paper's ref. [34]) with LIP-pretrained weights.

How a person crop meets the network (the original's convention, which the golden
``lip_gccpm_2stage.npz`` input follows): the crop is resized to ``size x size/2``
(256x128 by default; SYSU/RegDB crops are about 2:1), zero-padded left and right to
``size x size`` and normalised as (BGR - 128) / 256 (:func:`vireid.pose.gccpm.prepare_crop`).
``size`` is the side the weights were trained at when the checkpoint records it
(``vireid-prep train-estimator`` writes ``input_size``), else GCCPM's 256; running a
network at another scale than it learnt degrades its peaks (and 256 costs 4x the
time of 128). The last refinement stage's stride-8 maps (32x32 at 256) are cut back to
the crop's columns (32x16), each joint's peak is located with sub-cell refinement
(:meth:`vireid.pose.codec.HeatmapCodec.decode`), mapped to the crop's pixels, and its
value (clipped to [0, 1]) is the joint's confidence. The cache then renders Gaussians
from these keypoints on its own grid (stride 4 of the training input: 72x36 for
288x144), rather than resizing the 32x16 maps, so every estimator yields maps of
the same shape and sharpness.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

from pipeline.estimators.base import EstimatorError, PoseEstimator
from vireid.io import file_sha256
from vireid.pose import gccpm
from vireid.pose.joints import NUM_JOINTS

#: a joint whose peak is below this is reported missing (confidence 0)
MIN_PEAK = 0.05
#: GCCPM's input side, for checkpoints that do not record theirs (the public LIP weights)
DEFAULT_SIZE = 256


class LipEstimator(PoseEstimator):
    name = "lip"
    batch_size = 32

    def __init__(self, weights: "str | Path", device: str = "cpu", size: Optional[int] = None,
                 min_peak: float = MIN_PEAK):
        self.weights = Path(weights)
        if not self.weights.is_file():
            raise EstimatorError(f"{self.weights}: GCCPM weights not found (nothing is downloaded: pass the path "
                                 f"of the LIP checkpoint or of `vireid-prep train-estimator`'s output)")
        try:
            self.model, meta = gccpm.read_gccpm_checkpoint(self.weights)
        except gccpm.CheckpointMismatchError as exc:
            raise EstimatorError(str(exc)) from None
        if size is None:
            size = meta.get("input_size", DEFAULT_SIZE)
            if isinstance(size, bool) or not isinstance(size, int):
                raise EstimatorError(f"{self.weights}: input_size {size!r} is not an integer")
        try:
            gccpm.check_input_side(size)
        except ValueError as exc:
            raise EstimatorError(f"{self.weights}: estimator {exc}") from None
        try:
            self.device = torch.device(device)
            self.model.to(self.device).eval()
        except (RuntimeError, AssertionError) as exc:
            raise EstimatorError(f"--device {device}: {exc}") from None
        self.size = size
        self.min_peak = min_peak
        self._sha256 = file_sha256(self.weights)

    def describe(self) -> Dict[str, Any]:
        return {"estimator": self.name, "weights": str(self.weights), "weights_sha256": self._sha256,
                "input": f"{self.size}x{self.size // 2} padded to {self.size}x{self.size}",
                "refinement_stages": len(self.model.refinement_stages), "min_peak": self.min_peak}

    @torch.no_grad()
    def estimate(self, images: Sequence[np.ndarray], paths: Sequence[str]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, NUM_JOINTS, 3), np.float32)
        prepared = [gccpm.prepare_crop(img, self.size) for img in images]
        batch = torch.cat([p[0] for p in prepared]).to(self.device)
        stages = self.model(batch)
        maps = stages[-1][:, :NUM_JOINTS].float().cpu().numpy()       # (N, 16, S/8, S/8)
        out = np.empty((len(images), NUM_JOINTS, 3), np.float32)
        for i, ((_, transform), img) in enumerate(zip(prepared, images)):
            xy, score = gccpm.decode_crop_maps(maps[i], transform)
            conf = np.clip(score, 0.0, 1.0)
            missing = conf < self.min_peak
            xy[missing] = np.nan
            conf[missing] = 0.0
            out[i, :, :2] = xy
            out[i, :, 2] = conf
        return out
