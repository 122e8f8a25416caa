"""The inference network of a checkpoint as TorchScript or ONNX.

The exported network takes ``images`` ``[B, 3, H, W]`` float32 (H x W = the checkpoint's
input size; RGB, ``/ 255``, ImageNet mean/std: :func:`vireid.inputs.transforms.normalise`)
and ``modality`` ``[B]`` int64 (0 RGB, 1 IR), and returns ``(f_id, f_all)``, each
``[B, D]``: the network's eval-mode features (stripe embeddings L2-normalised per stripe
and concatenated, eqs. 12-13; normalise the whole row for cosine similarities, as
``FeatureExtractor`` does). The batch size is free.

For a graph without data-dependent control flow, every image goes through both
modality stems and ``torch.where`` keeps its own modality's result (BatchNorm is in eval
mode, so each image's result is what the routed network gives it): the stems' work is
doubled, the rest of the network is unchanged. The file records the input size, the
feature sizes, the preprocessing and the checkpoint's sha256 (TorchScript: the extra file
``vireid.json``; ONNX: metadata properties).
"""
from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path
from typing import Any, Dict, Tuple

import torch
from torch import Tensor, nn

from vireid.io import PathLike, atomic_path
from vireid.model import PoseVIReIDNet
from vireid.model.modality_specific import IR, ModalitySpecificModule

log = logging.getLogger(__name__)

FORMATS = ("torchscript", "onnx")
INPUT_NAMES = ("images", "modality")
OUTPUT_NAMES = ("f_id", "f_all")
ONNX_OPSET = 17
PREPROCESSING = ("BGR -> RGB, resize to input_size (bilinear), / 255, ImageNet mean (0.485, 0.456, 0.406) "
                 "and std (0.229, 0.224, 0.225); a grey IR image as three equal channels")


class ExportError(RuntimeError):
    """Export failed or its check against eager PyTorch did not hold."""


class _BothStems(nn.Module):
    """Both modality stems on every image; each image keeps its own modality's output."""

    def __init__(self, stems: ModalitySpecificModule) -> None:
        super().__init__()
        self.rgb = stems.rgb
        self.ir = stems.ir

    def forward(self, images: Tensor, modality: Tensor) -> Tensor:
        is_ir = (modality == IR).view(-1, 1, 1, 1)
        return torch.where(is_ir, self.ir(images), self.rgb(images))


class InferenceNet(nn.Module):
    """``(images, modality) -> (f_id, f_all)`` of a :class:`PoseVIReIDNet` in eval mode (a copy)."""

    def __init__(self, model: PoseVIReIDNet) -> None:
        super().__init__()
        self.net = copy.deepcopy(model).eval()
        self.net.modality_specific = _BothStems(self.net.modality_specific)
        self.input_size = tuple(int(v) for v in model.config.input_size)
        self.feature_dim = dict(model.feature_dim)
        self.eval()

    def forward(self, images: Tensor, modality: Tensor) -> Tuple[Tensor, Tensor]:
        feats = self.net(images, modality)
        return feats["f_id"], feats["f_all"]


def example_inputs(input_size: Tuple[int, int], batch: int = 2, seed: int = 0) -> Tuple[Tensor, Tensor]:
    """Random normalised images and alternating modalities (both stems used)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, *input_size, generator=g)
    return images, torch.arange(batch, dtype=torch.long) % 2


def metadata(net: InferenceNet, checkpoint_sha256: str = "") -> Dict[str, Any]:
    return {"format": "vireid-inference/1", "inputs": list(INPUT_NAMES), "outputs": list(OUTPUT_NAMES),
            "input_size": list(net.input_size), "feature_dim": {k: net.feature_dim[k] for k in OUTPUT_NAMES},
            "modality": {"rgb": 0, "ir": 1}, "preprocessing": PREPROCESSING,
            "checkpoint_sha256": checkpoint_sha256}


def export_model(model: PoseVIReIDNet, out: PathLike, fmt: str, checkpoint_sha256: str = "") -> Path:
    """Write the inference network of ``model`` to ``out`` (atomically) as ``fmt``."""
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {FORMATS}, got {fmt!r}")
    net = InferenceNet(model)
    meta = metadata(net, checkpoint_sha256)
    example = example_inputs(net.input_size)
    out = Path(out)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")           # tracer notes on the network's shape checks (constant here)
        if fmt == "torchscript":
            traced = torch.jit.trace(net, example, check_trace=False)
            with atomic_path(out, suffix=".pt") as tmp:
                torch.jit.save(traced, str(tmp), _extra_files={"vireid.json": json.dumps(meta)})
        else:
            _export_onnx(net, example, out, meta)
    log.info("exported %s to %s", fmt, out)
    return out


def _export_onnx(net: InferenceNet, example: Tuple[Tensor, Tensor], out: Path, meta: Dict[str, Any]) -> None:
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install 'vireid[onnx]'") from None
    dynamic = {name: {0: "batch"} for name in INPUT_NAMES + OUTPUT_NAMES}
    with atomic_path(out, suffix=".onnx") as tmp:
        torch.onnx.export(net, example, str(tmp), dynamo=False, input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic, opset_version=ONNX_OPSET)
        proto = onnx.load(str(tmp))
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
        onnx.save(proto, str(tmp))


def load_exported(path: PathLike, fmt: str) -> Any:
    """A callable ``(images ndarray|Tensor, modality) -> (f_id, f_all)`` as numpy arrays, for checks."""
    import numpy as np

    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)      # torch.jit is deprecated, still the format asked for
            module = torch.jit.load(str(path), map_location="cpu").eval()

        def run(images, modality):
            with torch.no_grad():
                outs = module(torch.as_tensor(images), torch.as_tensor(modality, dtype=torch.long))
            return tuple(o.numpy() for o in outs)
        return run
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("checking an ONNX file needs onnxruntime: pip install 'vireid[onnx]'") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run_onnx(images, modality):
        feeds = {"images": np.asarray(images, np.float32), "modality": np.asarray(modality, np.int64)}
        return tuple(session.run(list(OUTPUT_NAMES), feeds))
    return run_onnx


def check_export(model: PoseVIReIDNet, path: PathLike, fmt: str, batch: int = 3, seed: int = 1,
                 tolerance: float = 1e-4) -> float:
    """Largest absolute difference between the exported network and eager PyTorch on random
    inputs of another batch size than the export's example (modalities mixed).

    Raises :class:`ExportError` if it exceeds ``tolerance``.
    """
    images, modality = example_inputs(tuple(model.config.input_size), batch=batch, seed=seed)
    modality = 1 - modality                                            # IR first: not the export's example order
    model = model.eval()
    with torch.no_grad():
        eager = model(images, modality)
    got = load_exported(path, fmt)(images.numpy(), modality.numpy())
    worst = max(float((eager[name] - torch.from_numpy(g)).abs().max()) for name, g in zip(OUTPUT_NAMES, got))
    if not worst <= tolerance:
        raise ExportError(f"{path}: the exported network differs from eager PyTorch by {worst:.2e} "
                          f"(> {tolerance:.0e})")
    return worst
