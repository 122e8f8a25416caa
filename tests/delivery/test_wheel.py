"""The project installs as a wheel: build one from the sources, install it into a folder of
its own, and run ``vireid-prep manifest`` and ``vireid-train --config <preset name>`` from
outside the repository (the presets and the LICENSE ship in the wheel).

The wheel is built from a copy of only what ``setup.cfg`` packages (``vireid/``,
``pipeline/``, ``data_manifests/``, the metadata), so a dataset specification that is not declared as package
data is missing from it. It is installed with ``pip install --no-deps --target``; its
console script runs with ``PYTHONPATH`` set to that folder alone, from a folder outside
the checkout, and the run proves which copy it imported (``vireid``, ``pipeline`` and the
specification all from the installed folder). torch, click and the other dependencies come
from the test's own interpreter, as they would from the venv a wheel is installed into.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.data.trees import make_sysu

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("vireid", "pipeline", "data_manifests", "setup.cfg", "pyproject.toml", "README.md", "LICENSE")
PROBE = """
import json, sys
import data_manifests, pipeline.cli, vireid
from vireid.data.spec import load_spec
print(json.dumps({"vireid": vireid.__file__, "pipeline": pipeline.cli.__file__,
                  "data_manifests": data_manifests.__file__,
                  "spec": str(load_spec("sysu").source)}))
"""

PRESET_PROBE = """
import json
from vireid.configs import find_config
from vireid.engine.config import load_config
print(json.dumps({"sysu": str(find_config("sysu")), "epochs": load_config("sysu.yaml").epochs}))
"""


def _build_wheel(tmp: Path) -> Path:
    pytest.importorskip("setuptools", reason="the dev extra installs setuptools (building the wheel)")
    src = tmp / "src"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "-q", "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    (wheel,) = (tmp / "dist").glob("vireid-*.whl")
    return wheel


def test_wheel_installs_and_runs_vireid_prep_outside_the_repo(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    for yaml in ("sysu", "regdb", "lip"):
        assert f"data_manifests/{yaml}.yaml" in names
    assert {"pipeline/cli.py", "vireid/data/spec.py", "data_manifests/__init__.py"} <= names
    assert "vireid-prep = pipeline.cli:main" in entry_points
    assert not any(n.startswith("tests/") for n in names)
    presets = sorted(p.name for p in (REPO / "configs").glob("*.yaml"))
    assert presets and {f"vireid/configs/{p}" for p in presets} <= names      # every preset ships
    assert any(re.search(r"\.dist-info/(licenses/)?LICENSE$", n) for n in names), "LICENSE not in the dist-info"

    site = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                          "--target", str(site), str(wheel)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    work = tmp_path / "elsewhere"                 # outside the checkout: nothing found relative to it
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))
    probe = subprocess.run([sys.executable, "-c", PROBE], cwd=work, env=env, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    where = json.loads(probe.stdout)
    for key, path in where.items():
        assert Path(path).resolve().is_relative_to(site.resolve()), f"{key} imported from {path}, not the wheel"

    spec = make_sysu(work / "SYSU-MM01")          # a tiny tree, checked strictly against its own sizes
    (work / "SYSU-MM01" / "vireid_synth.json").write_text(json.dumps({"layout": "sysu",
                                                                      "expected": dict(spec.expected)}))
    script = site / "bin" / "vireid-prep"
    res = subprocess.run([sys.executable, str(script), "manifest", "--dataset", "sysu", "--root", "SYSU-MM01",
                          "--out", "sysu.manifest.json", "--no-progress"],
                         cwd=work, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    manifest = json.loads((work / "sysu.manifest.json").read_text())
    assert len(manifest["records"]) == 52 and not manifest["partial"]
    assert manifest["spec_hash"] == spec.content_hash

    # the presets by name, from outside the checkout: the packaged sysu.yaml (its required
    # model.pose_init stops the run before anything else is read); an unknown name lists them
    train = site / "bin" / "vireid-train"
    res = subprocess.run([sys.executable, str(train), "--config", "sysu", "--cache", "nowhere", "--out", "run"],
                         cwd=work, env=env, capture_output=True, text=True)
    assert res.returncode == 1 and "model.pose_init is required by this preset" in res.stderr, res.stderr
    probe = subprocess.run([sys.executable, "-c", PRESET_PROBE], cwd=work, env=env, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert Path(found["sysu"]).resolve().is_relative_to(site.resolve()) and found["epochs"] == 100
    res = subprocess.run([sys.executable, str(train), "--config", "sysuu", "--cache", "nowhere", "--out", "run"],
                         cwd=work, env=env, capture_output=True, text=True)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "'sysuu'" in res.stderr and ", ".join(p[:-len(".yaml")] for p in presets) in res.stderr
