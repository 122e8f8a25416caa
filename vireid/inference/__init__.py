"""vireid.inference: a trained checkpoint on your own images.

:class:`~vireid.inference.extractor.FeatureExtractor` (features of paths, arrays or a
manifest), :mod:`~vireid.inference.featurefile` (the ``vireid-extract`` feature file),
:mod:`~vireid.inference.search` (cross-modal top-k search and its ranking picture) and
:mod:`~vireid.inference.export` (TorchScript / ONNX inference network). The CLIs are
``vireid-extract``, ``vireid-search`` and ``vireid-export`` (:mod:`vireid.cli`).
"""
