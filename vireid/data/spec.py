"""Dataset specifications: the declarative files in ``vireid/data/manifests/`` read into dataclasses.

Every constant about a dataset's layout, expected size and test protocol comes from
``vireid/data/manifests/<name>.yaml``; code never repeats them. The files are package
data, read through :mod:`importlib.resources`, so an editable install, a wheel and a
site-packages install all find them. Each file is parsed once (:func:`load_spec` caches)
into a :class:`DatasetSpec`; its ``protocol:`` section into a typed
:class:`EvalProtocol` (``spec.evaluation``), which the test protocols, the metrics and
the scanners read.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple

import yaml

from vireid.pose.joints import JOINT_NAMES



def __getattr__(name: str) -> Any:
    """``DATASETS``: the registered dataset names (:func:`vireid.data.registry.names`)."""
    if name == "DATASETS":
        from vireid.data import registry

        return registry.names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SpecError(ValueError):
    """A dataset specification file is missing or malformed."""


def manifests_dir() -> Path:
    """The package folder holding the ``<dataset>.yaml`` specifications."""
    return Path(str(resources.files("vireid.data") / "manifests"))


@dataclass(frozen=True)
class Camera:
    name: str
    modality: str          # "rgb" | "ir"
    index: int             # 1-based camera number used by the protocols (cam3 -> 3)
    indoor: bool = False
    idx_name: str = ""     # RegDB: the modality word in idx file names


@dataclass(frozen=True)
class EvalProtocol:
    """The ``protocol:`` section of a dataset specification, typed.

    Attributes:
        trials: the trial numbers, ``first_trial .. first_trial + trials - 1`` (SYSU-MM01:
            the gallery seeds 0..9; RegDB: the idx file numbers 1..10).
        query_cameras: SYSU-MM01: the cameras whose images are the queries.
        gallery_cameras: SYSU-MM01: search mode -> its gallery cameras, in order.
        multi_shot: SYSU-MM01: images per identity and camera in a multi-shot gallery.
        excluded_camera_pairs: ``(query camera, gallery camera)`` numbers whose gallery
            images are removed from that query's ranking (SYSU-MM01: ``(3, 2)``).
        directions: RegDB: direction (``v2t``) -> (query camera, gallery camera) names.
    """

    trials: Tuple[int, ...]
    query_cameras: Tuple[str, ...] = ()
    gallery_cameras: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    multi_shot: Optional[int] = None
    excluded_camera_pairs: Tuple[Tuple[int, int], ...] = ()
    directions: Mapping[str, Tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    full_name: str
    image_ext: str
    cameras: Tuple[Camera, ...]
    layout: Mapping[str, Any]
    expected: Mapping[str, Any]
    source: Path
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)
    evaluation: Optional[EvalProtocol] = None   # the typed protocol (None: LIP has none)

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


def _positive_int(value: Any, key: str, source: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{source}: {key} must be a positive integer, got {value!r}")
    return value


def _camera_names(value: Any, key: str, known: Mapping[str, Camera], source: Path) -> Tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value or ())
    for name in names:
        if name not in known:
            raise SpecError(f"{source}: {key}: {name!r} is not a declared camera ({sorted(known)})")
    return tuple(str(n) for n in names)


def parse_protocol(doc: Mapping[str, Any], cameras: Tuple[Camera, ...], source: Path) -> EvalProtocol:
    """The ``protocol:`` section as an :class:`EvalProtocol` (camera names checked)."""
    if not isinstance(doc, Mapping):
        raise SpecError(f"{source}: protocol must be a mapping")
    known = {c.name: c for c in cameras}
    num = _positive_int(_require(doc, "trials", source), "protocol.trials", source)
    first = _require(doc, "first_trial", source)
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise SpecError(f"{source}: protocol.first_trial must be a non-negative integer, got {first!r}")
    shots = doc.get("shots") or {}
    pairs = []
    for i, pair in enumerate(doc.get("exclusions") or ()):
        key = f"protocol.exclusions[{i}]"
        if not isinstance(pair, Mapping):
            raise SpecError(f"{source}: {key} must map query_camera and gallery_camera")
        q, g = (_camera_names(_require(pair, k, source), key, known, source)[0]
                for k in ("query_camera", "gallery_camera"))
        pairs.append((known[q].index, known[g].index))
    directions = {}
    for name, d in (doc.get("directions") or {}).items():
        key = f"protocol.directions.{name}"
        if not isinstance(d, Mapping):
            raise SpecError(f"{source}: {key} must map query and gallery")
        directions[str(name)] = tuple(_camera_names(_require(d, k, source), key, known, source)[0]
                                      for k in ("query", "gallery"))
    return EvalProtocol(
        trials=tuple(range(first, first + num)),
        query_cameras=_camera_names(doc.get("query_cameras"), "protocol.query_cameras", known, source),
        gallery_cameras={str(mode): _camera_names(cams, f"protocol.gallery_cameras.{mode}", known, source)
                         for mode, cams in (doc.get("gallery_cameras") or {}).items()},
        multi_shot=(_positive_int(shots["multi"], "protocol.shots.multi", source) if "multi" in shots else None),
        excluded_camera_pairs=tuple(pairs),
        directions=directions,
    )


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
    if isinstance(layout, Mapping) and "joints" in layout:      # a pose dataset's joint order (LIP)
        joints = tuple(layout.get("joints", ()))
        if joints != JOINT_NAMES:
            raise SpecError(f"{source}: layout.joints {list(joints)} differ from vireid.pose.joints.JOINT_NAMES")
    protocol = doc.get("protocol")
    return DatasetSpec(
        name=str(name), full_name=str(doc.get("full_name", name)), image_ext=str(doc.get("image_ext", ".jpg")),
        cameras=tuple(cameras), layout=layout, expected=doc.get("expected") or {},
        source=source, raw=dict(doc),
        evaluation=None if protocol is None else parse_protocol(protocol, tuple(cameras), source),
    )


@lru_cache(maxsize=None)
def load_spec(name: str) -> DatasetSpec:
    """Load ``vireid/data/manifests/<name>.yaml`` (package data). ``name`` is a registered
    dataset (:mod:`vireid.data.registry`) or a path to a YAML file."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else manifests_dir() / f"{name}.yaml"
    if not path.is_file():
        from vireid.data import registry

        known = ", ".join(registry.names())
        raise SpecError(f"no dataset specification {path} (known datasets: {known})")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    return parse_spec(doc, path)
