"""The training presets: ``sysu.yaml``, ``regdb.yaml`` (the paper's Section IV-A), the
``*_release.yaml`` recipes, the Table IV ``ablation_*.yaml`` rows and ``demo.yaml``.

They are package data, so an installed wheel has them; the repository's top-level
``configs/`` is a link to this folder (one copy). ``--config`` takes a file path or a
preset's name: a path that exists wins; a bare name (``sysu`` or ``sysu.yaml``) with no such
file is looked up here (:func:`find_config`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

from vireid.config_loader import ConfigError
from vireid.io import PathLike

#: The folder of the packaged presets.
PRESETS_DIR = Path(__file__).resolve().parent


def preset_names() -> List[str]:
    """The presets' names (file stems), sorted."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def find_config(path: PathLike) -> Path:
    """The configuration file ``path`` names: the file itself when it exists, else the packaged
    preset of that bare name; :class:`ConfigError` (one line, listing the presets) otherwise."""
    given = Path(path)
    if given.exists():
        return given
    text = os.fspath(path)
    if "/" not in text and os.sep not in text:
        stem = text[: -len(".yaml")] if text.endswith(".yaml") else text
        preset = PRESETS_DIR / f"{stem}.yaml"
        if preset.is_file():
            return preset
        raise ConfigError(f"configuration {text!r}: no such file and no preset of that name "
                          f"(presets: {', '.join(preset_names())})")
    raise ConfigError(f"{given}: configuration file not found (or give a preset by name: "
                      f"{', '.join(preset_names())})")
