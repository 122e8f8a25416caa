"""The ``lip`` estimator: GCCPM (the paper's ref. [34]) with LIP-pretrained weights.

How a person crop meets the network: as a LIP image does in training without
augmentation (:func:`vireid.pose.codec.prepare_input`, the one fit both use), scaled so
its longer side is ``size`` and centred on the ``size x size`` input, grey (0 after the
(BGR - 128) / 256 normalisation) around it. A 2:1 crop (SYSU/RegDB crops are about
2:1) becomes ``size x size/2`` between grey columns, as in the golden
``lip_gccpm_2stage.npz`` input; a wide crop keeps its aspect ratio between grey rows.
``size`` is the side the weights were trained at when the checkpoint records it
(``vireid-prep train-estimator`` writes ``input_size``), else GCCPM's 256; running a
network at another scale than it learnt degrades its peaks (and 256 costs 4x the
time of 128). The last refinement stage's stride-8 maps (32x32 at 256) are searched
only over the cells the crop covers (32x16 for 2:1), each joint's peak is located with
sub-cell refinement (:meth:`vireid.pose.codec.HeatmapCodec.decode`), mapped to the crop's pixels, and its
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
from vireid.pose.codec import STRIDE, HeatmapCodec, check_input_side, prepare_input
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
            check_input_side(size)
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
                "input": f"longer side {self.size}, centred on {self.size}x{self.size}",
                "refinement_stages": len(self.model.refinement_stages), "min_peak": self.min_peak}

    @torch.no_grad()
    def estimate(self, images: Sequence[np.ndarray], paths: Sequence[str]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, NUM_JOINTS, 3), np.float32)
        prepared = [prepare_input(img, self.size) for img in images]
        batch = torch.from_numpy(np.stack([p[0] for p in prepared])).to(self.device)
        stages = self.model(batch)
        maps = stages[-1][:, :NUM_JOINTS].float().cpu().numpy()       # (N, 16, S/8, S/8)
        codec = HeatmapCodec((self.size, self.size), STRIDE)
        out = np.empty((len(images), NUM_JOINTS, 3), np.float32)
        for i, (_, fit) in enumerate(prepared):
            xy, score = codec.decode(maps[i], within=fit.cells(STRIDE))
            xy = fit.to_image(xy)
            conf = np.clip(score, 0.0, 1.0)
            missing = conf < self.min_peak
            xy[missing] = np.nan
            conf[missing] = 0.0
            out[i, :, :2] = xy
            out[i, :, 2] = conf
        return out
