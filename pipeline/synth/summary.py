"""What a synthetic data set holds: counts per modality and split."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Tuple


@dataclass(frozen=True)
class Written:
    """A layout writer's report to :func:`pipeline.synth.synthesize`."""

    images: Dict[str, int]                 # per modality: {'rgb': n, 'ir': n}
    splits: Dict[str, Dict[str, int]]      # per split: {'ids': n, 'rgb': n, 'ir': n} (LIP: ids = persons)
    expected: Dict[str, Any]               # the layout's ``expected`` block, for the scanner
    image_size: Tuple[int, int]            # the base (h, w) used


@dataclass(frozen=True)
class SynthSummary:
    """Result of :func:`pipeline.synth.synthesize`."""

    layout: str
    out: Path
    seed: int
    ids: int
    images_per_camera: int
    images: Dict[str, int] = field(default_factory=dict)
    splits: Dict[str, Dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        mods = " + ".join(f"{n} {m.upper()}" for m, n in sorted(self.images.items(), key=lambda kv: kv[0] != "rgb"))
        splits = ", ".join(f"{s} {c.get('ids', 0)} ids" for s, c in self.splits.items())
        return (f"synthetic {self.layout}: {self.ids} identities, {mods} images ({splits}); "
                f"seed {self.seed}, {self.seconds:.1f} s")
