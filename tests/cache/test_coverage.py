"""vireid.cache.coverage: share of confident joints per modality, by hand."""
from __future__ import annotations

import numpy as np

from vireid.cache.coverage import describe_coverage, joint_coverage


def test_joint_coverage_by_hand():
    conf = np.zeros((3, 16), np.float32)
    conf[0, :8] = 0.9                   # RGB image: 8 joints, all confident
    conf[1, :4] = 0.3                   # RGB image: 4 weak joints
    conf[2, :2] = 0.6                   # IR image: 2 confident joints
    meta = {"modality": np.array([0, 0, 1]), "confidence": conf}
    cov = joint_coverage(meta)
    assert cov["RGB"][0.0] == 12 / 32 and cov["RGB"][0.5] == 8 / 32
    assert cov["IR"][0.0] == 2 / 16 and cov["IR"][0.5] == 2 / 16
    assert describe_coverage(cov) == ("joints with confidence > 0: RGB 37.5%, IR 12.5%; "
                                      "> 0.5: RGB 25.0%, IR 12.5%")
    only_rgb = joint_coverage({"modality": np.array([0]), "confidence": conf[:1]}, thresholds=(0.95,))
    assert only_rgb == {"RGB": {0.95: 0.0}} and describe_coverage({}) == "no images"
