"""Small assertions shared by the inference CLI tests."""
from __future__ import annotations

from click.testing import CliRunner


def assert_help_mentions(cli, *words: str) -> None:
    """``--help`` exits 0 and names every one of ``words``."""
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0, res.output
    missing = [w for w in words if w not in res.output]
    assert not missing, (missing, res.output)
