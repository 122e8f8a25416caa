"""Dataset readers: everything about one dataset that is code rather than declaration.

A dataset is a spec and a reader, registered in one place (:mod:`vireid.data.registry`):

* the spec, ``<manifests dir>/<name>.yaml`` (:mod:`vireid.data.spec`): layout, cameras
  and modalities, splits, expected sizes and test protocol;
* the reader, a module ``vireid/data/readers/<name>.py`` holding a :class:`DatasetReader`
  as ``READER``: the scanner that turns a dataset root into manifest records, the
  training images of a manifest, the test protocol's query / gallery sets and metric,
  the results table's column groups, and the synthesizer hook (``vireid-prep synth``).

No other module names a dataset: the commands' ``--dataset`` choices, the evaluation
protocols and the synthesizer's layouts all come from the registry. Reader modules keep
their imports light (no torch at import time): ``vireid-prep`` lists every reader.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from vireid.data.manifest import Manifest
    from vireid.data.protocol_sets import ProtocolSets
    from vireid.data.scan_checks import Collector
    from vireid.data.spec import DatasetSpec

__all__ = ["DatasetReader", "SynthHook"]


@dataclass(frozen=True)
class SynthHook:
    """How ``vireid-prep synth --layout NAME`` writes this dataset's layout.

    ``writer``: ``"module:function"`` (imported when used), called as
    ``writer(root, ids, seed, images_per_camera, image_size, progress, **extra)`` and
    returning a :class:`pipeline.synth.summary.Written`. ``stream``: this layout's code in
    the synthesizer's seeded random streams (unique per layout; never change one, or the
    same seed writes other bytes). ``infrared``: whether ``--ir-levels`` applies.
    """

    writer: str
    default_images_per_camera: int
    stream: int
    infrared: bool = True

    def load(self) -> Any:
        import importlib

        module, _, func = self.writer.partition(":")
        return getattr(importlib.import_module(module), func)


class DatasetReader:
    """One dataset's code. Subclass, set the class attributes, implement :meth:`scan`
    (and, for a ReID benchmark, :meth:`protocol_sets`), and register the instance."""

    #: registry key, the ``--dataset`` value and the spec's ``name``
    name: str = ""
    #: a ReID benchmark (vireid-train / vireid-eval accept it); LIP, the pose set, is not
    reid: bool = True
    #: trained per trial with its own train lists (RegDB): ``--trial`` / ``data.trial`` apply
    trained_per_trial: bool = False
    #: whether the manifest has a ``val`` split of its own (``data.holdout: val``)
    has_val_split: bool = False
    #: whether the gallery has a single / multi shot choice (``vireid-eval --shot``)
    has_shots: bool = False
    #: the results table's column groups (``results.md``), in order
    settings: Tuple[str, ...] = ()
    #: the ``--root`` help: what the dataset root holds
    root_hint: str = ""
    #: the synthesizer hook (None: ``vireid-prep synth`` cannot write this layout)
    synth: Optional[SynthHook] = None
    #: the spec file; None: ``<manifests dir>/<name>.yaml``
    spec_path: Optional[Path] = None

    # ------------------------------------------------------------------ declaration
    def spec(self) -> "DatasetSpec":
        from vireid.data.spec import load_spec

        return load_spec(str(self.spec_path) if self.spec_path is not None else self.name)

    # ------------------------------------------------------------------ scanning
    def scan(self, root: Path, spec: "DatasetSpec", col: "Collector", jobs: int, progress: bool) -> "Manifest":
        """The manifest of ``root`` (every problem gathered in ``col``; ``col.raise_if_fatal``
        before returning)."""
        raise NotImplementedError(f"{type(self).__name__}.scan")

    # ------------------------------------------------------------------ training
    def training_paths(self, manifest: "Manifest", splits: Sequence[str], trial: int) -> Optional[List[str]]:
        """The training images' paths, or None: the records whose ``split`` is in ``splits``."""
        return None

    # ------------------------------------------------------------------ evaluation
    def protocol_sets(self, manifest: "Manifest", options: Any,
                      checkpoint: Mapping[str, Any]) -> Dict[str, "ProtocolSets"]:
        """Setting name (a column group of :attr:`settings`) -> query and per-trial galleries,
        for ``vireid-eval``'s options (:class:`vireid.engine.evaluate.EvalOptions`)."""
        raise ValueError(f"{self.name} has no test protocol")

    def metrics(self, distmat: Any, q_pids: Any, g_pids: Any, q_cams: Any, g_cams: Any) -> Any:
        """The protocol's ranking metrics (:class:`vireid.evaluation.RankMetrics`)."""
        from vireid.evaluation import regdb_metrics

        return regdb_metrics(distmat, q_pids, g_pids)

    def test_ids(self, manifest: "Manifest", trial: Optional[int] = None) -> List[int]:
        """The test identities (for notes on identities without queries, Grad-CAM)."""
        return sorted({r.pid for r in manifest.records if r.split == "test"})

    def cmc_title(self, shot: str) -> str:
        spec_name = self.spec().full_name
        return f"{spec_name} CMC ({shot} shot)" if self.has_shots else f"{spec_name} CMC"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
