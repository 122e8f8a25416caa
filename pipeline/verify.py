"""``vireid-prep verify``: check a heatmap cache end to end and list every problem."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import h5py
import numpy as np

from vireid.data.manifest import Manifest, ManifestError
from vireid.data.shards import CACHE_FORMAT, compare_attributes, shard_name
from vireid.pose.joints import JOINT_NAMES, NUM_JOINTS


def verify_cache(root: "str | Path", manifest_path: Optional["str | Path"] = None) -> List[str]:
    """Problems found in the cache at ``root`` (empty list = sound).

    Checks: cache.json, index.json and every shard readable; each shard's attributes equal
    cache.json's; every image of the manifest present exactly once (or listed in
    skipped.json); index rows match the shards; no NaN or out-of-range confidence; heatmap
    and image shapes as declared; the manifest's hash equals the one the cache records.
    """
    root = Path(root)
    problems: List[str] = []
    try:
        attrs = json.loads((root / "cache.json").read_text())
    except (OSError, ValueError) as exc:
        return [f"{root / 'cache.json'}: unreadable ({exc})"]
    if attrs.get("format") != CACHE_FORMAT:
        problems.append(f"{root / 'cache.json'}: format {attrs.get('format')!r}, expected {CACHE_FORMAT}")
    if attrs.get("joint_names") != list(JOINT_NAMES):
        problems.append(f"{root / 'cache.json'}: joint names differ from the LIP schema")
    try:
        manifest = Manifest.load(manifest_path or root / "manifest.json")
    except ManifestError as exc:
        return problems + [str(exc)]
    if manifest.hash != attrs.get("manifest_hash"):
        problems.append(f"{root}: built from manifest {str(attrs.get('manifest_hash'))[:12]}, "
                        f"the manifest given has hash {manifest.hash[:12]}")
    try:
        index = json.loads((root / "index.json").read_text())
    except (OSError, ValueError) as exc:
        return problems + [f"{root / 'index.json'}: missing or unreadable ({exc}): the cache is incomplete"]
    n_shards = -(-int(attrs["num_records"]) // int(attrs["shard_size"])) if attrs.get("num_records") else 0
    expected_shards = [shard_name(s) for s in range(n_shards)]
    if index.get("shards") != expected_shards:
        problems.append(f"{root / 'index.json'}: lists {len(index.get('shards', []))} shards, expected {n_shards}")
    hm_shape = (NUM_JOINTS, *attrs["heatmap_size"])
    seen: List[str] = []
    skipped: List[str] = []
    for s, name in enumerate(expected_shards):
        path = root / name
        try:
            with h5py.File(path, "r") as f:
                shard_attrs = json.loads(f.attrs["vireid_cache"])
                diffs = compare_attributes(shard_attrs, attrs)
                if diffs:
                    problems.append(f"{path}: attributes differ from cache.json: " + "; ".join(diffs))
                n = int(f.attrs["rows"])
                skipped += [d["path"] for d in json.loads(f.attrs["skipped"])]
                if f["heatmaps"].shape != (n, *hm_shape):
                    problems.append(f"{path}: heatmaps of shape {f['heatmaps'].shape}, expected {(n, *hm_shape)}")
                conf = f["confidence"][()]
                if not np.isfinite(conf).all() or (conf < 0).any() or (conf > 1).any():
                    problems.append(f"{path}: confidence has NaN or values outside [0, 1]")
                kps = f["keypoints"][()]
                if np.isinf(kps).any() or (np.isnan(kps).any(axis=-1) != (conf == 0)).any():
                    problems.append(f"{path}: keypoints are NaN exactly where the confidence is not 0")
                for r in range(n):     # touch every chunk: a corrupt one raises here
                    f["heatmaps"][r]
                    f["image"][r]
                seen += list(f["path"].asstr()[()])
        except (OSError, KeyError, ValueError) as exc:
            problems.append(f"{path}: unreadable shard ({exc})")
    if index.get("paths") != seen:
        problems.append(f"{root / 'index.json'}: entries do not match the shards' rows")
    wanted = [r.path for r in manifest.records]
    have = set(seen) | set(skipped)
    missing = [p for p in wanted if p not in have]
    if missing:
        problems.append(f"{root}: {len(missing)} manifest image(s) absent from the cache, e.g. {missing[0]}")
    if len(seen) != len(set(seen)):
        problems.append(f"{root}: an image is stored twice")
    extra = set(seen) - set(wanted)
    if extra:
        problems.append(f"{root}: {len(extra)} cached image(s) not in the manifest, e.g. {sorted(extra)[0]}")
    return problems
