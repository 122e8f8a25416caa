"""The one code of an image's modality wherever a number stands for it: the heatmap cache's
``modality`` column, the network's ``modality`` input, the feature file and the batches
(manifests and dataset specs spell it ``"rgb"`` / ``"ir"``)."""
from __future__ import annotations

from enum import IntEnum


class Modality(IntEnum):
    """RGB (visible) = 0, IR (thermal) = 1."""

    RGB = 0
    IR = 1
