"""``model.pretrained: imagenet`` is torchvision's IMAGENET1K_V1, found in (or downloaded to) the
torch hub cache with its hash checked. A small fake ResNet-18 state dict stands in for the
real file: its SHA-256 prefix goes into the URL the test hands :mod:`vireid.model.pretrained`,
so nothing is downloaded."""
from __future__ import annotations

import hashlib
import shutil
import urllib.error
from pathlib import Path
from typing import Dict, Tuple

import pytest
import torch
import torchvision

import vireid.model.pretrained as pretrained
from tests.model.helpers import small_config
from vireid.model import PoseVIReIDNet, load_imagenet_backbone

URL_BASE = "https://download.example/models"


def fake_imagenet(folder: Path, seed: int = 3) -> Tuple[Path, str, Dict[str, torch.Tensor]]:
    """A ResNet-18 state dict file (random weights), its SHA-256 and the state dict."""
    torch.manual_seed(seed)
    sd = torchvision.models.resnet18(weights=None).state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"fake-{seed}.pth"
    torch.save(sd, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest(), sd


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An empty torch hub folder; torchvision's V1 URL of resnet18 points at the fake file's hash;
    any download attempt fails as it would offline, unless a test installs its own."""
    fake, sha, sd = fake_imagenet(tmp_path / "src")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(pretrained, "imagenet_url", lambda arch: f"{URL_BASE}/{arch}-{sha[:8]}.pth")

    def offline(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return {"fake": fake, "sha": sha, "sd": sd, "dir": tmp_path / "hub" / "checkpoints",
            "name": f"resnet18-{sha[:8]}.pth"}


def test_imagenet_means_torchvisions_v1_not_the_current_default() -> None:
    url = pretrained.imagenet_url("resnet50")
    assert url == torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url
    assert url.endswith("/resnet50-0676ba61.pth")                      # the file the paper's start used
    assert url != torchvision.models.ResNet50_Weights.DEFAULT.url      # V2: resnet50-11ad3fa6.pth


def test_the_v1_file_in_the_hub_cache_is_checked_loaded_and_reported(hub) -> None:
    hub["dir"].mkdir(parents=True)
    shutil.copy(hub["fake"], hub["dir"] / hub["name"])
    model = PoseVIReIDNet(small_config("baseline"))
    report = load_imagenet_backbone(model)
    assert report["file"] == str(hub["dir"] / hub["name"]) and report["sha256"] == hub["sha"]
    assert report["url"] == f"{URL_BASE}/{hub['name']}"
    assert torch.equal(model.state_dict()["reid_branch.layer3.0.conv1.weight"], hub["sd"]["layer3.0.conv1.weight"])


def test_another_version_in_the_cache_is_not_taken_for_v1(hub) -> None:
    """A valid torch.hub file of other weights (as V2's resnet50-11ad3fa6.pth beside V1) is not used."""
    other, sha, _ = fake_imagenet(hub["dir"].parent / "src2", seed=4)
    hub["dir"].mkdir(parents=True)
    shutil.copy(other, hub["dir"] / f"resnet18-{sha[:8]}.pth")
    with pytest.raises(FileNotFoundError, match=hub["name"]):
        load_imagenet_backbone(PoseVIReIDNet(small_config("baseline")))


def test_wrong_content_under_the_v1_name_is_refused(hub) -> None:
    other, sha, _ = fake_imagenet(hub["dir"].parent / "src2", seed=4)
    hub["dir"].mkdir(parents=True)
    shutil.copy(other, hub["dir"] / hub["name"])
    with pytest.raises(ValueError) as err:
        load_imagenet_backbone(PoseVIReIDNet(small_config("baseline")))
    msg = str(err.value)
    assert "\n" not in msg and str(hub["dir"] / hub["name"]) in msg
    assert f"sha256 {sha[:16]}... does not start with {hub['sha'][:8]}" in msg and URL_BASE in msg


def test_a_hub_style_name_given_as_a_path_is_checked_too(hub, tmp_path: Path) -> None:
    renamed = tmp_path / "mine" / "resnet18-0123abcd.pth"
    renamed.parent.mkdir()
    shutil.copy(hub["fake"], renamed)
    with pytest.raises(ValueError, match="does not start with 0123abcd"):
        load_imagenet_backbone(PoseVIReIDNet(small_config("baseline")), renamed)
    report = load_imagenet_backbone(PoseVIReIDNet(small_config("baseline")), hub["fake"])  # a plain name: loaded
    assert report["sha256"] == hub["sha"] and report["url"] is None


def test_offline_without_the_file_says_what_to_download_and_where(hub) -> None:
    with pytest.raises(FileNotFoundError) as err:
        load_imagenet_backbone(PoseVIReIDNet(small_config("baseline")))
    msg = str(err.value)
    assert "\n" not in msg
    for part in (hub["name"], f"{URL_BASE}/{hub['name']}", str(hub["dir"]), "Temporary failure in name resolution"):
        assert part in msg, part


def test_missing_file_is_downloaded_by_torch_hub_with_its_hash(hub, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, dst, hash_prefix))
        shutil.copy(hub["fake"], dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    report = load_imagenet_backbone(PoseVIReIDNet(small_config("baseline")))
    assert calls == [(f"{URL_BASE}/{hub['name']}", str(hub["dir"] / hub["name"]), hub["sha"][:8])]
    assert report["sha256"] == hub["sha"] and Path(report["file"]).parent == hub["dir"]


def test_a_download_with_the_wrong_hash_is_refused(hub, monkeypatch: pytest.MonkeyPatch) -> None:
    def download(url, dst, hash_prefix=None, progress=True):
        raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "deadbeef")')

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    with pytest.raises(ValueError, match="download of .* was refused: invalid hash value"):
        load_imagenet_backbone(PoseVIReIDNet(small_config("baseline")))
