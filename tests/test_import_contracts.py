"""The layering is enforced by a tool: `lint-imports` (import-linter, the dev extra) keeps every
contract of .importlinter on this tree (scripts/test.sh runs it before the tests, so CI fails on
a broken one), and on a copy of the tree with an import against the layers or the public face
it fails, naming the contract."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="the dev extra installs import-linter")

REPO = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root))      # the packages of `root`, not an installed copy
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True)


def test_the_tree_keeps_every_contract():
    res = _lint(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def test_an_import_against_the_layering_breaks_the_run(tmp_path: Path):
    for name in ("vireid", "pipeline", "data_manifests"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    shutil.copy2(REPO / ".importlinter", tmp_path / ".importlinter")
    spec = tmp_path / "vireid" / "data" / "spec.py"
    spec.write_text(spec.read_text() + "\n\ndef _upward():\n    from vireid import __version__\n"
                    "    from vireid.engine import errors\n    return __version__, errors\n")
    res = _lint(tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    out = " ".join(res.stdout.split())
    assert "each imports only the layers below it BROKEN" in out
    assert "no module inside imports it BROKEN" in out
    assert "vireid.data.spec -> vireid.engine.errors" in out
