"""Shared fixtures. Tests that need ../shared (golden values, real crops) use the
``shared_dir`` fixture and skip with a reason when it is absent (a user's clone);
``.ci/run`` sets VIREID_REQUIRE_SHARED=1 so that such a skip fails CI instead.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        if os.environ.get("VIREID_REQUIRE_SHARED") == "1":
            pytest.fail(f"{SHARED_DIR} is missing but VIREID_REQUIRE_SHARED=1 (CI must have it)")
        pytest.skip(f"{SHARED_DIR} not found: golden values and real images live beside the repo")
    return SHARED_DIR


@pytest.fixture(scope="session")
def golden_dir(shared_dir: Path) -> Path:
    return shared_dir / "golden"
