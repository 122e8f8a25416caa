"""Checkpoints of the joint model: one format for training (``last.pt``, ``best.pt``) and
evaluation.

A checkpoint is a ``torch.save``d dict, written atomically (temporary file, then rename)
and sealed with the SHA-256 of its bytes (:mod:`vireid.sealing`), so a truncated or
bit-flipped file is refused with one line naming it:

=================  ============================================================
key                content
=================  ============================================================
format             ``"vireid-checkpoint/1"``
model              the model's state dict
model_config       ``dataclasses.asdict(ModelConfig)``: enough to rebuild the network
config             the whole resolved run configuration (dict)
dataset            ``"sysu"`` | ``"regdb"``; ``trial`` for RegDB (or None)
manifest_hash      hash of the manifest the model was trained on
cache_attrs        the heatmap cache's ``cache.json`` attributes
label_map          raw identity -> training label
epoch              epochs completed
...                training state (optimizer, scheduler, scaler, rng, sampler) for resume
=================  ============================================================
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

from vireid.io import PathLike
from vireid.model import PoseVIReIDNet
from vireid.model.config import model_config_from
from vireid.sealing import DamagedFileError, torch_load, torch_save

CHECKPOINT_FORMAT = "vireid-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, of another format, or does not fit."""


def save_checkpoint(path: PathLike, payload: Mapping[str, Any], keep_previous: bool = False) -> None:
    """Write ``payload`` (plus the format tag) atomically and sealed: a crash never leaves
    half a file. ``keep_previous``: the checkpoint replaced stays as ``<stem>.prev.pt``."""
    data = dict(payload)
    data["format"] = CHECKPOINT_FORMAT
    torch_save(data, path, keep_previous=keep_previous)


def load_checkpoint(path: PathLike, map_location: Any = "cpu") -> Dict[str, Any]:
    """A checkpoint, its seal checked; :class:`CheckpointError` (one line naming the file)
    when it is missing, truncated, damaged or not a vireid-train checkpoint."""
    path = Path(path)
    try:
        data = torch_load(path, map_location=map_location, weights_only=False)
    except DamagedFileError as exc:
        raise CheckpointError(str(exc)) from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a {CHECKPOINT_FORMAT} file (a vireid-train checkpoint)")
    for key in ("model", "model_config"):
        if key not in data:
            raise CheckpointError(f"{path}: checkpoint has no {key!r}")
    return data


def build_model_from_checkpoint(path: PathLike, map_location: Any = "cpu") -> Tuple[PoseVIReIDNet, Dict[str, Any]]:
    """Rebuild the network recorded in a checkpoint and load its weights strictly."""
    data = load_checkpoint(path, map_location)
    model = PoseVIReIDNet(model_config_from(data))
    result = model.load_state_dict(data["model"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f"{path}: weights do not fit the recorded model config: missing "
                              f"{result.missing_keys[:10]}, unexpected {result.unexpected_keys[:10]}")
    return model, data
