"""vireid.inference: a trained checkpoint on your own images.

:class:`~vireid.inference.extractor.FeatureExtractor` (features of paths, arrays or a
manifest), :mod:`~vireid.inference.featurefile` (the ``vireid-extract`` feature file),
:mod:`~vireid.inference.search` (cross-modal top-k search and its ranking picture),
:mod:`~vireid.inference.export` (TorchScript / ONNX inference network) and
:mod:`~vireid.inference.gradcam` (Grad-CAM of the ReID branch and the pose mask, with its
picture in :mod:`~vireid.inference.gradcam_figure`). The CLIs are ``vireid-extract``,
``vireid-search``, ``vireid-export`` and ``vireid-gradcam`` (:mod:`vireid.cli`).
"""
