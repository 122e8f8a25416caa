"""Dataclass configurations from YAML files and ``key=value`` overrides: the one loader of
``vireid-train --config`` (:mod:`vireid.engine.config`) and ``vireid-prep heatmaps --config``.

A configuration is a dataclass; a field whose type is a dataclass is a section. It is read
in layers, lowest priority first:

* a YAML file, after the files it names under ``inherit:`` (or ``defaults:``; a file name or
  a list, relative to the file; later files and the file itself override what they inherit);
* overrides ``key.sub=value``, the value read as YAML (``0.1``, ``true``, ``null``,
  ``[1, 2]``); a string key keeps the text as written (``model.pretrained=2024``).

Every layer is checked on its own against the dataclasses' type hints (:func:`check_layer`),
so an error names the file (or override) at fault and the dotted key: an unknown key with
its close matches, or a value of the wrong type. One routine, :func:`coerce`, converts
values: an int is accepted for a float, a list for a tuple, and nothing else; a string is
never read as a number or a switch. The merged layers build the dataclasses, whose own
``__post_init__`` checks values (:func:`build_layers`).

Why this loader rather than OmegaConf's structured configs: docs/getting-started.md, "Settings".
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from vireid.io import PathLike

INHERIT_KEYS = ("inherit", "defaults")

#: ``(source, mapping)``: one file's or override's keys, and where they came from.
Layer = Tuple[str, Dict[str, Any]]


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the file and key at fault."""


# ----------------------------------------------------------------------------- values
def plain(value: Any) -> Any:
    """Tuples -> lists, recursively (YAML / JSON friendly)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def to_yaml(config: Any) -> str:
    """A dataclass configuration as YAML (field order kept), readable by :func:`load`."""
    return yaml.safe_dump(plain(dataclasses.asdict(config)), sort_keys=False, default_flow_style=False)


def type_name(tp: Any) -> str:
    """``tp`` in words, for error messages ("an integer or null", "a list of 2 values (...)")."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Union:
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin in (tuple, Tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {type_name(args[0])}"
        return f"a list of {len(args)} values ({', '.join(type_name(a) for a in args)})"
    if origin in (list, List):
        return f"a list of {type_name(args[0])}" if args else "a list"
    if dataclasses.is_dataclass(tp):
        return "a section (mapping)"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


class _Mismatch(Exception):
    pass


def coerce(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (an int accepted for a float, a list for a tuple), or ``_Mismatch``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Union:
        if value is None:
            if type(None) in args:
                return None
            raise _Mismatch
        for a in args:
            if a is not type(None):
                try:
                    return coerce(value, a)
                except _Mismatch:
                    pass
        raise _Mismatch
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (bool, int, float, str):
        if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
        raise _Mismatch
    if origin in (tuple, list) and isinstance(value, (list, tuple)):
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            items = [coerce(v, args[0] if args else Any) for v in value]
        elif len(value) == len(args):
            items = [coerce(v, a) for v, a in zip(value, args)]
        else:
            raise _Mismatch
        return tuple(items) if origin is tuple else items
    raise _Mismatch


# ----------------------------------------------------------------------------- layers
def _suggest(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else f"; known keys: {', '.join(sorted(known))}"


def check_layer(layer: Any, source: str, schema: type, notes: Optional[Mapping[str, str]] = None,
                prefix: str = "") -> Dict[str, Any]:
    """One file's (or override's) mapping checked against the dataclass ``schema``: unknown keys
    and value types are :class:`ConfigError` naming ``source`` and the dotted key (an unknown
    key listed in ``notes`` gets that explanation instead of close matches). Returns the
    mapping with values coerced."""
    if not isinstance(layer, Mapping):
        where = prefix.rstrip(".") or "the top level"
        raise ConfigError(f"{source}: {where} must be a mapping of keys to values, got {layer!r}")
    hints = typing.get_type_hints(schema)
    names = [f.name for f in dataclasses.fields(schema)]
    out: Dict[str, Any] = {}
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            if notes and dotted in notes:
                raise ConfigError(f"{source}: {notes[dotted]}")
            raise ConfigError(f"{source}: unknown key {dotted!r}{_suggest(dotted, [prefix + n for n in names])}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            out[key] = check_layer(value, source, tp, notes, f"{dotted}.")
            continue
        try:
            out[key] = coerce(value, tp)
        except _Mismatch:
            raise ConfigError(f"{source}: {dotted} must be {type_name(tp)}, got {value!r}") from None
    return out


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> Dict[str, Any]:
    """``top`` over ``base``, sections merged key by key."""
    out = dict(base)
    for k, v in top.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def build(schema: type, values: Mapping[str, Any]) -> Any:
    """The dataclass ``schema`` from checked values (missing keys take the defaults)."""
    hints = typing.get_type_hints(schema)
    return schema(**{k: build(hints[k], v) if dataclasses.is_dataclass(hints[k]) else v for k, v in values.items()})


def build_layers(schema: type, layers: Sequence[Layer], notes: Optional[Mapping[str, str]] = None,
                 validate: Optional[Callable[[Any], None]] = None) -> Any:
    """Check each layer, merge them in order and build ``schema``; a value check that fails
    (the dataclasses' own, or ``validate``'s ``ValueError``) is a :class:`ConfigError` naming
    every source."""
    merged: Dict[str, Any] = {}
    for source, layer in layers:
        merged = merge(merged, check_layer(layer, source, schema, notes))
    try:
        config = build(schema, merged)
        if validate is not None:
            validate(config)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{', '.join(s for s, _ in layers) or 'the defaults'}: {exc}") from None
    return config


# ----------------------------------------------------------------------------- files and overrides
def read_yaml(path: PathLike, chain: Tuple[Path, ...] = ()) -> List[Layer]:
    """Layers of ``path`` and what it inherits, lowest priority first."""
    path = Path(path).resolve()
    if path in chain:
        raise ConfigError(f"{path}: inheritance cycle: {' -> '.join(str(p) for p in chain + (path,))}")
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        where = f" (inherited by {chain[-1]})" if chain else ""
        raise ConfigError(f"{path}: configuration file not found{where}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a readable YAML file: {exc}") from None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: must hold a mapping of keys to values, got {type(doc).__name__}")
    layers: List[Layer] = []
    for key in INHERIT_KEYS:
        if key in doc:
            parents = doc.pop(key)
            parents = [parents] if isinstance(parents, str) else parents
            if not isinstance(parents, list) or not all(isinstance(v, str) for v in parents):
                raise ConfigError(f"{path}: {key} must be a file name or a list of file names, got {parents!r}")
            for parent in parents:
                layers += read_yaml(path.parent / parent, chain + (path,))
    layers.append((str(path), doc))
    return layers


def parse_override(text: str) -> Tuple[List[str], Any]:
    """``'optim.lr=0.02'`` -> ``(['optim', 'lr'], 0.02)`` (value read as YAML)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")) or " " in key:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE with a dotted key, e.g. optim.lr=0.02")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def override_layer(text: str, schema: type) -> Layer:
    """The layer of one ``key.sub=value`` override of ``schema``."""
    parts, value = parse_override(text)
    # a string field keeps the text as written (e.g. a path like 2024 or a name like 'on')
    section: Any = schema
    for p in parts[:-1]:
        section = typing.get_type_hints(section).get(p) if dataclasses.is_dataclass(section) else None
    if dataclasses.is_dataclass(section):
        tp = typing.get_type_hints(section).get(parts[-1])
        if tp in (str, Optional[str]) and value is not None and not isinstance(value, str):
            value = text.partition("=")[2].strip()
    layer: Dict[str, Any] = {parts[-1]: value}
    for p in reversed(parts[:-1]):
        layer = {p: layer}
    return f"override {text!r}", layer


def load(schema: type, path: Optional[PathLike] = None, overrides: Sequence[str] = (),
         notes: Optional[Mapping[str, str]] = None, validate: Optional[Callable[[Any], None]] = None) -> Any:
    """``schema`` from ``path`` (with what it inherits) and ``overrides``, in that order
    (:func:`build_layers`); :class:`ConfigError` names the file or override and the key."""
    layers = read_yaml(path) if path is not None else []
    return build_layers(schema, layers + [override_layer(o, schema) for o in overrides], notes, validate)
