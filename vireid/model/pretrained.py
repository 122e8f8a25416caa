"""Which ImageNet weights ``model.pretrained: imagenet`` means, found or fetched as torchvision does.

``imagenet`` is torchvision's ``IMAGENET1K_V1`` of the backbone (``ResNet50_Weights.IMAGENET1K_V1``,
``resnet50-0676ba61.pth``): the weights the paper's ResNet-50 start was trained from (Section
IV-A), not torchvision's current default (``IMAGENET1K_V2``, another file). The file lives where
``torch.hub.load_state_dict_from_url`` keeps it, ``<torch.hub.get_dir()>/checkpoints/<name>``
(``$TORCH_HOME/hub/checkpoints``); a missing file is downloaded there by torch.hub with its hash
checked. Any file named like a torch.hub download (``<arch>-<hex>.pth``) must have a SHA-256
starting with that hex, as ``torch.hub``'s ``check_hash`` requires: a file of other content under
that name (a V2 file renamed, a truncated copy) is refused rather than loaded silently.
"""
from __future__ import annotations

import logging
import os
import re
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

import torch
import torchvision

from vireid.io import file_sha256

logger = logging.getLogger(__name__)

#: The torchvision weights entry ``model.pretrained: imagenet`` stands for.
IMAGENET_ENTRY = "IMAGENET1K_V1"


@dataclass(frozen=True)
class WeightsFile:
    """A weight file as it was used: its path, SHA-256 and (for ``imagenet``) where torchvision publishes it."""

    path: Path
    sha256: str
    url: Optional[str] = None


def imagenet_url(arch: str) -> str:
    """The download address of torchvision's ``IMAGENET1K_V1`` weights of ``arch`` (e.g. ``resnet50``)."""
    return getattr(torchvision.models.get_model_weights(arch), IMAGENET_ENTRY).url


def hub_checkpoints() -> Path:
    """The folder torch.hub downloads state dicts to (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def name_hash(path: os.PathLike, arch: str) -> Optional[str]:
    """The hash prefix in a torch.hub-style file name ``<arch>-<hex>.pth`` (None for other names)."""
    match = re.fullmatch(rf"{re.escape(arch)}-([a-f0-9]{{8,}})\.pth", Path(path).name)
    return match.group(1) if match else None


def checked(path: Path, arch: str, url: Optional[str] = None) -> WeightsFile:
    """``path`` with its SHA-256; ``ValueError`` (one line) when its name carries a hash prefix
    its content does not have."""
    digest = file_sha256(path)
    prefix = name_hash(path, arch)
    if prefix is not None and not digest.startswith(prefix):
        origin = f"torchvision's {IMAGENET_ENTRY} file from {url}" if url else f"a torch.hub file of hash {prefix}"
        raise ValueError(f"{path}: sha256 {digest[:16]}... does not start with {prefix}, the hash its name "
                         f"promises: not {origin} (another file under its name, or a damaged copy); delete it "
                         f"or replace it with the right file")
    return WeightsFile(path=path, sha256=digest, url=url)


def _download(url: str, dst: Path, hash_prefix: str) -> None:
    """torch.hub's download (what ``load_state_dict_from_url(check_hash=True)`` runs): a temporary
    file moved into place once its hash is checked."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(dst), hash_prefix=hash_prefix, progress=True)


def imagenet_weights(arch: str) -> WeightsFile:
    """The checked ``IMAGENET1K_V1`` file of ``arch``: from the hub cache, else downloaded there.

    Raises:
        FileNotFoundError: not in the cache and not downloadable (offline): names the file, its
            URL and the folder to put it in.
        ValueError: the file there (or downloaded) has other content than its name's hash.
    """
    url = imagenet_url(arch)
    name = os.path.basename(urlparse(url).path)
    folder = hub_checkpoints()
    path = folder / name
    if not path.is_file():
        prefix = name_hash(path, arch) or ""
        logger.info("downloading torchvision's %s weights of %s: %s -> %s", IMAGENET_ENTRY, arch, url, path)
        try:
            _download(url, path, prefix)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise FileNotFoundError(
                f"ImageNet weights {name} ({arch} {IMAGENET_ENTRY}) are not in {folder} and could not be "
                f"downloaded from {url} ({reason}): download that file into {folder} (torch.hub's "
                f"checkpoints folder, $TORCH_HOME/hub/checkpoints), or give its path with "
                f"model.pretrained=PATH") from None
        except RuntimeError as exc:                  # torch.hub: the downloaded file's hash differs
            raise ValueError(f"the download of {url} was refused: {exc}") from None
    return checked(path, arch, url)
