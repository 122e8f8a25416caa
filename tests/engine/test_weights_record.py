"""A run records the weight files it started from (ImageNet and the LIP checkpoint, with their
SHA-256) in ``config.yaml`` and in its checkpoints; a resume keeps the record."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import torch
import yaml

from tests.engine.test_trainer import cache_dir, tiny_config  # noqa: F401 - cache_dir is a fixture
from tests.model.test_pretrained import URL_BASE, hub  # noqa: F401 - hub is a fixture
from tests.model.test_weights import _gccpm_like_state
from vireid.model.checkpoint import load_checkpoint
from vireid.engine.config import load_config
from vireid.engine.trainer import train
from vireid.model import PoseVIReIDNet

#: the GCCPM input layout (128 trunk features + 17 heatmaps): what a LIP checkpoint loads into
POSE = ["model.deconv_channels=128", "model.refine_channels=128"]


def test_weights_are_recorded_in_config_yaml_and_the_checkpoint(cache_dir, hub, tmp_path: Path) -> None:  # noqa: F811
    hub["dir"].mkdir(parents=True)
    shutil.copy(hub["fake"], hub["dir"] / hub["name"])
    lip = tmp_path / "lip_gccpm.pth"
    cfg = tiny_config(*POSE, "epochs=1", "data.batches_per_epoch=1", "model.pretrained=imagenet",
                      f"model.pose_init={lip}")
    torch.save(_gccpm_like_state(PoseVIReIDNet(cfg.model_config(num_classes=6))), lip)
    lip_sha = hashlib.sha256(lip.read_bytes()).hexdigest()
    want = {"imagenet": str(hub["dir"] / hub["name"]), "imagenet_sha256": hub["sha"],
            "imagenet_url": f"{URL_BASE}/{hub['name']}", "pose_init": str(lip), "pose_init_sha256": lip_sha}

    run = tmp_path / "run"
    train(cfg, cache_dir, run)
    assert yaml.safe_load((run / "config.yaml").read_text())["weights"] == want
    assert load_config(run / "config.yaml").model.pretrained == "imagenet"      # the setting stays as written
    ck = load_checkpoint(run / "last.pt")
    assert ck["weights"] == want and ck["config"]["weights"] == want

    # a resume loads no weights file: the record comes from the checkpoint, config.yaml keeps it
    (hub["dir"] / hub["name"]).unlink()
    train(tiny_config(*POSE, "epochs=2", "data.batches_per_epoch=1", "model.pretrained=imagenet",
                      f"model.pose_init={lip}"), cache_dir, run, resume="auto")
    assert yaml.safe_load((run / "config.yaml").read_text())["weights"] == want
    assert load_checkpoint(run / "last.pt")["weights"] == want
