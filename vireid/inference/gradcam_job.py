"""What ``vireid-gradcam`` does for each identity: pick its crops in the heatmap cache, run
:func:`vireid.inference.gradcam.explain` with every model, and lay the results out as the
rows of :mod:`vireid.inference.gradcam_figure`.

Images: the identity's first RGB and first IR crop in cache (manifest) order. With the
cache's keypoints in ``meta`` (``'keypoints'``, ``'confidence'``), each image's record also says
how much of its map lies on the body (:func:`vireid.inference.gradcam.on_body`), and
:func:`summarise` averages that over identities per model. Each crop's
``'cross'`` reference is the mean f_ID (eq. 12) of *all* the identity's crops of the other
modality (up to ``max_reference``), computed by the same model without the flip; its training
class (for ``'logit'``) comes from the checkpoint's ``label_map``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vireid.data.manifest import Manifest
from vireid.inference.extractor import FeatureExtractor, ImageItem
from vireid.inference.gradcam import Explanation, body_box, explain, on_body
from vireid.inference.gradcam_figure import Cell, Row
from vireid.model.modality_specific import IR, RGB

log = logging.getLogger(__name__)

MODALITIES = {RGB: "rgb", IR: "ir"}


class GradCamError(ValueError):
    """A user mistake: an identity the cache has no test images of, an incompatible checkpoint."""


@dataclass
class Model:
    """One checkpoint in the picture: its role ('full', 'baseline' or the file name)."""

    role: str
    checkpoint: Path
    extractor: FeatureExtractor

    @property
    def has_peb(self) -> bool:
        return self.extractor.model.pose_branch is not None

    @property
    def label_map(self) -> Dict[int, int]:
        return {int(k): int(v) for k, v in dict(self.extractor.checkpoint_data.get("label_map") or {}).items()}


@dataclass
class IdentityResult:
    """One identity's picture rows and what ``gradcam.json`` records about it."""

    pid: int
    rows: List[Row]
    record: Dict[str, Any] = field(default_factory=dict)


def check_compatible(model: Model, cache: Any, manifest: Manifest) -> None:
    """:class:`GradCamError` when ``model`` was trained at another input size or on another
    data set than the cache holds (the names of both files in the message)."""
    want = tuple(model.extractor.input_size)
    have = cache.geometry.input_size
    if want != have:
        raise GradCamError(f"{model.checkpoint} was trained at {want[0]}x{want[1]} but {cache.root} holds "
                           f"{have[0]}x{have[1]} crops: use a cache of the training size")
    trained_on = model.extractor.checkpoint_data.get("manifest_hash")
    if trained_on and trained_on != manifest.hash:
        raise GradCamError(f"{model.checkpoint} was trained on manifest {trained_on[:12]}, {cache.root} holds "
                           f"manifest {manifest.hash[:12]}: not the same data set")


def test_identities(manifest: Manifest, checkpoint_data: Dict[str, Any]) -> List[int]:
    """The test identities: the test split's; else the dataset reader's (RegDB: the test lists
    of the checkpoint's trial)."""
    ids = {r.pid for r in manifest.records if r.split == "test"}
    if not ids:
        from vireid.data import registry

        ids = set(registry.get(manifest.dataset).test_ids(manifest, checkpoint_data.get("trial")))
    return sorted(ids)


def images_of(meta: Dict[str, np.ndarray], pid: int) -> Dict[int, List[int]]:
    """Cache indices of identity ``pid``'s crops, per modality code, in cache order."""
    own = meta["pid"] == pid
    return {code: np.flatnonzero(own & (meta["modality"] == code)).tolist() for code in (RGB, IR)}


def _batch(extractor: FeatureExtractor, cache: Any, indices: Sequence[int], code: int) -> torch.Tensor:
    arrays = [extractor.prepare(ImageItem(cache.read_arrays(int(i))[0], code))[0] for i in indices]
    return torch.from_numpy(np.stack(arrays)).to(extractor.device)   # [n, 3, H, W]


@torch.no_grad()
def reference(extractor: FeatureExtractor, cache: Any, indices: Sequence[int], code: int) -> torch.Tensor:
    """Unit mean f_ID [P*E] of the crops ``indices`` (all of modality ``code``)."""
    feats = []
    for start in range(0, len(indices), extractor.batch_size):
        part = indices[start:start + extractor.batch_size]
        images = _batch(extractor, cache, part, code)
        modality = torch.full((len(part),), code, dtype=torch.long, device=extractor.device)
        feats.append(F.normalize(extractor.model(images, modality)["f_id"].float(), dim=1))
    return F.normalize(torch.cat(feats).mean(0), dim=0)


def explain_identity(models: Sequence[Model], cache: Any, meta: Dict[str, np.ndarray], pid: int,
                     score: str = "auto", layer: str = "f_id", max_reference: int = 32) -> IdentityResult:
    """Every model's Grad-CAM and mask of identity ``pid``'s first RGB and first IR crop."""
    found = images_of(meta, pid)
    if not found[RGB] and not found[IR]:
        raise GradCamError(f"{cache.root}: no image of identity {pid}")
    shown = {code: idx[0] for code, idx in found.items() if idx}
    crops = {code: cache.read_arrays(int(i))[0] for code, i in shown.items()}
    boxes = {code: body_box(meta["keypoints"][i], meta["confidence"][i], crops[code].shape[:2])
             if "keypoints" in meta else None for code, i in shown.items()}
    result = IdentityResult(pid, [], {"pid": pid, "images": {MODALITIES[c]: cache.paths[i] for c, i in shown.items()},
                                      "models": []})
    for model in models:
        ex = model.extractor
        codes = sorted(shown)
        images = torch.cat([_batch(ex, cache, [shown[c]], c) for c in codes])      # [k, 3, H, W], k = 1 | 2
        modality = torch.tensor(codes, dtype=torch.long, device=ex.device)
        label = model.label_map.get(pid, -1)
        refs, has_ref = [], []
        for c in codes:
            other = found[1 - c][:max_reference]
            has_ref.append(bool(other))
            refs.append(reference(ex, cache, other, 1 - c) if other else
                        torch.zeros(ex.model.feature_dim["f_id"], device=ex.device))
        try:
            exp: Explanation = explain(ex.model, images, modality, score, [label] * len(codes), torch.stack(refs),
                                       has_ref, layer)
        except ValueError as exc:                   # an explicit --score the identity cannot have
            raise GradCamError(f"identity {pid}, {model.checkpoint}: {exc}") from None
        cells: Dict[int, Cell] = {c: Cell(missing=f"no {MODALITIES[c].upper()} image") for c in (RGB, IR)}
        entry: Dict[str, Any] = {"role": model.role, "checkpoint": str(model.checkpoint), "pose_branch": model.has_peb,
                                 "layer": layer}
        for k, c in enumerate(codes):
            cam = exp.cam[k]
            peak = np.unravel_index(int(np.argmax(cam)), cam.shape)
            cells[c] = Cell(image=crops[c], cam=cam, mask=None if exp.mask is None else exp.mask[k],
                            note=f"{exp.kinds[k]} {exp.score[k]:.3f}")
            entry[MODALITIES[c]] = {"score": exp.kinds[k], "value": float(exp.score[k]),
                                    "cam_peak_yx": [int(peak[0]), int(peak[1])],
                                    "mask_range": None if exp.mask is None else
                                    [float(exp.mask[k].min()), float(exp.mask[k].max())],
                                    "body": None if boxes[c] is None else
                                    {"box_yx": list(boxes[c]), **on_body(cam, None if exp.mask is None
                                                                         else exp.mask[k], boxes[c])}}
        name = model.checkpoint.name
        name = name if model.role == name else f"{model.role}: {name}"
        title = f"{name} ({'with' if model.has_peb else 'no'} pose branch), id {pid}, layer {layer}"
        result.rows.append(Row(title, cells[RGB], cells[IR]))
        result.record["models"].append(entry)
    return result


def summarise(records: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Per model role, over the images of ``records`` (``explain_identity``'s): ``score``, the
    mean explained score over all of them; ``images``, how many have a body box and a non-zero
    map, and the means of ``area``, ``cam_share``, ``lift`` and (with the pose branch)
    ``mask_contrast`` over those; ``zero_maps``, how many maps were all zero (no positive
    evidence: counted, not averaged in as 0 or as chance)."""
    acc: Dict[str, Dict[str, List[float]]] = {}
    zero: Dict[str, int] = {}
    for rec in records:
        for entry in rec["models"]:
            for key in MODALITIES.values():
                image = entry.get(key)
                if image is None:
                    continue
                got = acc.setdefault(entry["role"], {})
                zero.setdefault(entry["role"], 0)
                got.setdefault("score", []).append(image["value"])
                body = image.get("body")
                if body is None:
                    continue
                if body["cam_share"] is None:
                    zero[entry["role"]] += 1
                    continue
                for name in ("area", "cam_share", "lift", "mask_contrast"):
                    if body.get(name) is not None:
                        got.setdefault(name, []).append(body[name])
    return {role: {"images": len(v.get("cam_share", [])), "zero_maps": zero[role],
                   **{k: float(np.mean(x)) for k, x in v.items()}} for role, v in acc.items()}
