"""``scripts/install.sh`` keeps the torch of an interpreter that already has one.

An interpreter (a venv made here) holds stand-in ``torch`` / ``torchvision`` distributions
of the Docker base image's versions (tiny wheels built by the test). The pip calls that
``scripts/install.sh --print-pip-args`` prints -- the very argument lists the script runs --
are resolved by ``pip install --dry-run --report`` against a local folder of stand-in wheels
(``--no-index``: offline) that also holds the pinned torch release, so pip *could* swap the
host's torch: the report must install neither torch nor torchvision. A venv without torch
gets the pinned release of ``torch-pins.txt``.
"""
from __future__ import annotations

import configparser
import importlib.metadata
import json
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
#: torch / torchvision of the Dockerfile's base image (pytorch/pytorch:2.5.1-...): torchvision
#: 0.20.1 is the release built for torch 2.5.1.
IMAGE_TORCH = re.search(r"^FROM pytorch/pytorch:(\d+\.\d+\.\d+)-", (REPO / "Dockerfile").read_text(), re.M).group(1)
IMAGE_VERSIONS = {"torch": IMAGE_TORCH, "torchvision": "0.20.1"}


def _pins(path: Path) -> Dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and "==" in line:
            name, version = line.split("==")
            out[name.strip()] = version.strip()
    return out


def _wheel(folder: Path, name: str, version: str, module: Optional[str] = None) -> Path:
    """A stand-in wheel: metadata only, plus an empty importable module when ``module``."""
    stem = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    info = f"{stem}.dist-info"
    files = {f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: vireid-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    if module:
        files[f"{module}/__init__.py"] = f"__version__ = {version!r}\n"
    files[f"{info}/RECORD"] = "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n"
    path = folder / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for n, text in files.items():
            zf.writestr(n, text)
    return path


def _setuptools_wheel(folder: Path) -> Path:
    """The running interpreter's setuptools as a wheel: the isolated build of ``-e .`` needs one, offline."""
    dist = importlib.metadata.distribution("setuptools")
    path = folder / f"setuptools-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for f in dist.files or []:
            if ".." in f.parts or f.suffix == ".pyc" or not Path(f.locate()).is_file():
                continue
            zf.write(f.locate(), str(f))
    return path


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stand-in wheels of everything the project's base install resolves: the host's and the
    pinned torch / torchvision, and each requirement of ``setup.cfg`` at its lower bound."""
    pytest.importorskip("setuptools", reason="the dev extra installs setuptools (the editable build)")
    folder = tmp_path_factory.mktemp("wheels")
    for name, version in IMAGE_VERSIONS.items():
        _wheel(folder, name, version, module=name)
    for name, version in _pins(REPO / "torch-pins.txt").items():
        _wheel(folder, name, version, module=name)
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    for line in cfg["options"]["install_requires"].split("\n"):
        if not line.strip():
            continue
        req = Requirement(line.strip())
        if req.name in IMAGE_VERSIONS:
            continue
        lower = next(s.version for s in req.specifier if s.operator == ">=")
        _wheel(folder, req.name, lower)
    _setuptools_wheel(folder)
    return folder


def _venv(where: Path, wheels: List[Path]) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    if wheels:
        _pip(python, ["install", "-q", "--no-index", "--no-deps", *map(str, wheels)])
    return python


def _pip(python: Path, args: List[str]) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), *args], cwd=REPO, capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert res.returncode == 0, f"pip {' '.join(args)}:\n{res.stdout}{res.stderr}"
    return res


def _install_calls(python: Path) -> List[List[str]]:
    """The pip calls of ``scripts/install.sh`` into ``python`` (base install: no extras)."""
    res = subprocess.run(["bash", str(REPO / "scripts" / "install.sh"), "--print-pip-args"], capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin", "VIREID_SYSTEM": "1", "PYTHON": str(python),
                                         "VIREID_EXTRAS": ""})
    assert res.returncode == 0, res.stderr
    calls = [shlex.split(line) for line in res.stdout.splitlines() if line.strip()]
    assert calls and all(c[0] == "install" for c in calls), res.stdout
    return calls


def _dry_run(python: Path, call: List[str], index: Path, report: Path) -> Dict[str, str]:
    """What pip would install for one of the script's calls: {name: version}."""
    _pip(python, ["install", "--dry-run", "--report", str(report), "--no-index", "--find-links", str(index),
                  *call[1:]])
    return {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}


def test_install_keeps_the_hosts_torch(index: Path, tmp_path: Path) -> None:
    host = [next(index.glob(f"{n}-{v}-*.whl")) for n, v in IMAGE_VERSIONS.items()]
    python = _venv(tmp_path / "host", host)
    calls = _install_calls(python)
    assert not any("torch-pins.txt" in c for c in calls), calls
    planned: Dict[str, str] = {}
    for i, call in enumerate(calls):
        planned.update(_dry_run(python, call, index, tmp_path / f"report{i}.json"))
    assert "vireid" in planned, planned              # the project itself was resolved
    assert not {"torch", "torchvision"} & set(planned), f"install.sh would replace the host's torch: {planned}"


def test_fresh_interpreter_gets_the_pinned_torch(index: Path, tmp_path: Path) -> None:
    python = _venv(tmp_path / "fresh", [])
    calls = _install_calls(python)
    assert any("torch-pins.txt" in c for c in calls), calls
    planned = _dry_run(python, calls[0], index, tmp_path / "report.json")
    pins = _pins(REPO / "torch-pins.txt")
    assert {k: planned.get(k) for k in pins} == pins
    assert not {"torch", "torchvision"} & set(_pins(REPO / "constraints.txt")), "constraints.txt must not pin torch"
