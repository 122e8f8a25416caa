"""Parse a command line as the command would, without running it.

For the documented commands that cannot run in CI (a GPU, several nodes, Docker): a click
console script's options are parsed and type-checked by ``make_context`` (down to the
sub-command of a group), an argparse script's by its own parser, stopped right after
``parse_args``. A wrong option or value is the command's own usage error.
"""
from __future__ import annotations

import argparse
import configparser
import runpy
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

import click


class Parsed(Exception):
    """Raised in place of running a script once its arguments are parsed."""

    def __init__(self, namespace: argparse.Namespace):
        super().__init__("parsed")
        self.namespace = namespace


REPO = Path(__file__).resolve().parents[2]


def console_scripts() -> Dict[str, str]:
    """``{name: "module:function"}``: the console scripts ``setup.cfg`` declares (what an
    install puts on the PATH)."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg", encoding="utf-8")
    lines = parser.get("options.entry_points", "console_scripts", fallback="").splitlines()
    pairs = [line.split("=", 1) for line in lines if "=" in line]
    return {name.strip(): target.strip() for name, target in pairs}


def click_command(target: str) -> click.Command:
    """The click command behind an entry point ``module:function`` (its module's ``cli``)."""
    module = __import__(target.split(":")[0], fromlist=["cli"])
    command = getattr(module, "cli", None)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target}: no click command 'cli' in its module")
    return command


def parse_click(command: click.Command, args: Sequence[str], prog: str) -> List[str]:
    """Parse ``args`` with ``command`` (and its sub-commands); returns the command path parsed.
    Raises :class:`click.UsageError` (or a subclass) for an unknown option or a bad value."""
    path = [prog]
    with command.make_context(prog, list(args), resilient_parsing=False) as ctx, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)      # click 8.2 deprecates protected_args
        while isinstance(ctx.command, click.Group) and ctx.protected_args:
            name, rest = ctx.protected_args[0], ctx.protected_args[1:] + ctx.args
            sub = ctx.command.get_command(ctx, name)
            if sub is None:
                raise click.UsageError(f"no such command {name!r}", ctx)
            path.append(name)
            ctx = sub.make_context(name, rest, parent=ctx)
    return path


@contextmanager
def _stop_after_parse() -> Iterator[None]:
    original = argparse.ArgumentParser.parse_args

    def parse_args(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        raise Parsed(original(self, args, namespace))
    argparse.ArgumentParser.parse_args = parse_args  # type: ignore[method-assign]
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]


def parse_argparse_script(script: Path, args: Sequence[str]) -> argparse.Namespace:
    """Run ``script`` as ``__main__`` with ``args`` up to its ``parse_args``; its namespace.
    A bad option exits as the script would (``SystemExit(2)``)."""
    argv = sys.argv
    sys.argv = [str(script)] + list(args)
    try:
        with _stop_after_parse():
            runpy.run_path(str(script), run_name="__main__")
    except Parsed as done:
        return done.namespace
    finally:
        sys.argv = argv
    raise AssertionError(f"{script}: finished without calling parse_args")


def parse_argparse_module(module: str, args: Sequence[str]) -> argparse.Namespace:
    """As :func:`parse_argparse_script` for ``python -m module`` (e.g. torchrun's)."""
    argv = sys.argv
    sys.argv = [module] + list(args)
    try:
        with _stop_after_parse():
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except Parsed as done:
        return done.namespace
    finally:
        sys.argv = argv
    raise AssertionError(f"{module}: finished without calling parse_args")
