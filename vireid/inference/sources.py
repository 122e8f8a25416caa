"""What ``vireid-extract`` and ``vireid-search`` read: a folder of crops or a manifest, as
:class:`~vireid.inference.extractor.ImageItem` s with names relative to a root."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from vireid.inference.extractor import ExtractorError, ImageItem, as_items, modality_code

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def folder_items(folder: Path, modality: Optional[str] = None
                 ) -> Tuple[List[ImageItem], List[str], Dict[str, Any]]:
    """Every image under ``folder`` (recursively, sorted), of ``modality`` ('rgb' | 'ir';
    None / 'auto': from the pixels). Identities and cameras are unknown (-1)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExtractorError(f"{folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ExtractorError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
    code = modality_code(modality)
    items = [ImageItem(str(p), code) for p in files]
    names = [p.relative_to(folder).as_posix() for p in files]
    return items, names, {"root": str(folder.resolve()), "source": {"kind": "folder", "path": str(folder)}}


def manifest_items(manifest_path: Path, root: Optional[Path] = None, split: Sequence[str] = (),
                   modality: Optional[str] = None, cameras: Sequence[str] = ()
                   ) -> Tuple[List[ImageItem], List[str], Dict[str, Any]]:
    """The records of a ``vireid-prep manifest`` file (optionally only ``split``, ``modality``
    and ``cameras``), with their modality, identity and camera; paths under ``root``
    (default: the manifest's)."""
    from vireid.data.manifest import Manifest

    manifest = Manifest.load(manifest_path)
    mod = None if modality in (None, "auto") else modality
    if mod is not None:
        modality_code(mod)                                  # a named error for an unknown value
    records = manifest.select(split=list(split) or None, modality=mod, cameras=list(cameras) or None)
    if not records:
        raise ExtractorError(f"{manifest_path}: no record matches split={list(split) or 'any'} "
                             f"modality={mod or 'any'} cameras={list(cameras) or 'any'}")
    base = Path(root) if root is not None else Path(manifest.root)
    items = as_items(records, None, base)
    names = [r.path for r in records]
    return items, names, {"root": str(base.resolve()), "source": {
        "kind": "manifest", "path": str(manifest_path), "manifest_hash": manifest.hash,
        "split": list(split), "modality": mod, "cameras": list(cameras)}}
