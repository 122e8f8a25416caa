"""The test suite does not fill the disk it runs on.

The suite writes gigabytes into pytest's temporary directories (a paper preset's checkpoint
is 400 MB, the documented-commands workspace 5 GB). With pytest's default retention every
run's directories stayed behind, three runs' worth, and a CI run on a machine that had run
the suite before failed with "No space left on device". ``pyproject.toml`` sets
``tmp_path_retention_policy = "failed"`` and ``tmp_path_retention_count = 1``: a test that
passes has its ``tmp_path`` deleted when it ends. The two tests below check that this is in
effect in the run that executes them (they run in file order).
"""
from __future__ import annotations

from pathlib import Path

import pytest

_written: list[Path] = []


def test_a_passing_test_writes_into_its_tmp_path(tmp_path: Path) -> None:
    payload = tmp_path / "checkpoint.bin"
    payload.write_bytes(b"\0" * 4096)
    assert payload.stat().st_size == 4096
    _written.append(payload)


def test_its_tmp_path_is_gone_once_it_passed(request: pytest.FixtureRequest) -> None:
    if not _written:
        pytest.skip("runs after test_a_passing_test_writes_into_its_tmp_path; that one did not run")
    assert request.config.getini("tmp_path_retention_policy") == "failed"
    assert not _written[0].parent.exists(), (
        f"{_written[0].parent} outlived its passing test: tmp_path_retention_policy is not 'failed'"
    )
