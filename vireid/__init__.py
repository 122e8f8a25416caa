"""vireid: pose estimation as an auxiliary learning task for visible-infrared person ReID.

Layout (bottom-up, the layers of ``.importlinter``): ``vireid.pose`` (LIP joints, heatmaps,
the GCCPM estimator), ``vireid.data`` (dataset specs, manifests, protocols), ``vireid.cache``
(the heatmap cache's format, reader and writer), ``vireid.inputs`` (the training input
pipeline), ``vireid.model`` and ``vireid.losses`` (the paper's Fig. 2 and eqs. 1-21),
``vireid.evaluation`` (test protocols and metrics), ``vireid.engine`` (the trainer),
``vireid.experiments`` and ``vireid.inference`` (a trained model on your own images), and
the CLIs in ``vireid.cli``. The offline stage lives in the sibling package ``pipeline`` and
imports ``vireid``, never the reverse.

``vireid.FeatureExtractor`` is imported on first use, so ``import vireid`` stays cheap
(no torch) and no package imports another through this one.
"""
from typing import Any

from vireid._version import __version__

__all__ = ["FeatureExtractor", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "FeatureExtractor":
        from vireid.inference.extractor import FeatureExtractor

        return FeatureExtractor
    raise AttributeError(f"module 'vireid' has no attribute {name!r}")
