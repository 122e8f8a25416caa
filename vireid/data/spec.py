"""Dataset specifications: the declarative files in ``data_manifests/`` read into dataclasses.

Every constant about a dataset's layout, expected size and test protocol comes from
``data_manifests/<name>.yaml``; code never repeats them. The folder is found next to
the installed package (``pip install -e``, the project's install path) or through the
``VIREID_MANIFESTS`` environment variable.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import yaml

from vireid.pose.joints import JOINT_NAMES

DATASETS: Tuple[str, ...] = ("sysu", "regdb", "lip")


class SpecError(ValueError):
    """A dataset specification file is missing or malformed."""


def manifests_dir() -> Path:
    """The folder holding ``<dataset>.yaml`` specifications."""
    env = os.environ.get("VIREID_MANIFESTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "data_manifests"


@dataclass(frozen=True)
class Camera:
    name: str
    modality: str          # "rgb" | "ir"
    index: int             # 1-based camera number used by the protocols (cam3 -> 3)
    indoor: bool = False
    idx_name: str = ""     # RegDB: the modality word in idx file names


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    full_name: str
    image_ext: str
    cameras: Tuple[Camera, ...]
    layout: Mapping[str, Any]
    expected: Mapping[str, Any]
    protocol: Mapping[str, Any]
    source: Path
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def camera(self, name: str) -> Camera:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"{self.name}: no camera {name!r} (cameras: {[c.name for c in self.cameras]})")

    def cameras_of(self, modality: str) -> List[Camera]:
        return [c for c in self.cameras if c.modality == modality]

    @property
    def content_hash(self) -> str:
        """sha256 of the specification's content (recorded with every manifest)."""
        blob = json.dumps(self.raw, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


def _require(doc: Mapping[str, Any], key: str, source: Path) -> Any:
    if key not in doc:
        raise SpecError(f"{source}: missing key {key!r}")
    return doc[key]


def _camera_index(name: str, position: int) -> int:
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else position + 1


def parse_spec(doc: Mapping[str, Any], source: Path) -> DatasetSpec:
    """Validate a loaded YAML document and build a :class:`DatasetSpec`."""
    if not isinstance(doc, Mapping):
        raise SpecError(f"{source}: expected a mapping at the top level")
    name = _require(doc, "name", source)
    cams_doc = doc.get("cameras") or {}
    cameras = []
    for pos, (cam_name, cam) in enumerate(cams_doc.items()):
        modality = cam.get("modality") if isinstance(cam, Mapping) else None
        if modality not in ("rgb", "ir"):
            raise SpecError(f"{source}: camera {cam_name!r} needs modality rgb or ir, got {modality!r}")
        cameras.append(Camera(name=str(cam_name), modality=modality, index=_camera_index(str(cam_name), pos),
                              indoor=bool(cam.get("indoor", False)), idx_name=str(cam.get("idx_name", ""))))
    layout = _require(doc, "layout", source)
    if name == "lip":
        joints = tuple(layout.get("joints", ()))
        if joints != JOINT_NAMES:
            raise SpecError(f"{source}: layout.joints {list(joints)} differ from vireid.pose.joints.JOINT_NAMES")
    return DatasetSpec(
        name=str(name), full_name=str(doc.get("full_name", name)), image_ext=str(doc.get("image_ext", ".jpg")),
        cameras=tuple(cameras), layout=layout, expected=doc.get("expected") or {},
        protocol=doc.get("protocol") or {}, source=source, raw=dict(doc),
    )


@lru_cache(maxsize=None)
def load_spec(name: str) -> DatasetSpec:
    """Load ``data_manifests/<name>.yaml``. ``name`` is one of :data:`DATASETS` or a path to a YAML file."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else manifests_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(DATASETS)
        raise SpecError(f"no dataset specification {path} (known datasets: {known}; "
                        f"set VIREID_MANIFESTS to the data_manifests folder if it moved)")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    return parse_spec(doc, path)
