"""Shared pieces of the ``vireid-prep`` commands: one-line write errors, output checks."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import click

from vireid.io import WriteError, ensure_writable

#: problems listed on the terminal; the rest are counted (or written to a file)
MAX_LISTED = 50


def one_line_write_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A failed write (:class:`~vireid.io.WriteError`: disk full, folder not writable) ends
    the command with its one-line message instead of a traceback."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except WriteError as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper


def writable(folder: Path, what: str = "output folder") -> None:
    """:func:`vireid.io.ensure_writable` as a one-line click error."""
    try:
        ensure_writable(folder, what)
    except WriteError as exc:
        raise click.ClickException(str(exc)) from None
