"""Every documented command runs in CI (issue 26): each command of the shell blocks of
README.md and docs/**/*.md is run, in document order (README.md, then the pages in the order
it links them), in one workspace of tiny synthetic data, after the substitutions of
``tests/docs/substitutions.yaml`` (the one place that says how a documented command is made
to run here: paths, ``--device cpu``, tiny budgets); a command that cannot run here is listed
there with the reason and its options are parsed instead. So a documented command that
breaks, or a new one nobody made runnable, fails CI.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import click
import pytest
import yaml

from tests.docs.markdown_commands import Command, documented_commands
from tests.docs.parse_only import (click_command, console_scripts, parse_argparse_module, parse_argparse_script,
                                   parse_click)
from tests.subprocs import run_bounded

REPO = Path(__file__).resolve().parents[2]
SPEC: Dict[str, Any] = yaml.safe_load((Path(__file__).with_name("substitutions.yaml")).read_text(encoding="utf-8"))
#: seconds one documented command may take here
COMMAND_TIMEOUT = 300


@dataclass(frozen=True)
class Planned:
    """A documented command and what CI does with it: ``run`` (the substituted text) or
    ``check`` (not run: ``reason``; the substituted text is checked by ``check``)."""

    command: Command
    text: str
    check: Optional[str] = None
    reason: str = ""

    @property
    def where(self) -> str:
        return self.command.where(REPO)


def substitute(text: str) -> str:
    """``text`` after the ``replace`` rules, then with the ``append`` rules' arguments."""
    for rule in SPEC.get("replace", []):
        if isinstance(rule, dict):
            if not re.search(rule["block"], text):
                continue
            rule = rule["rule"]
        text = re.sub(rule[0], rule[1], text)
    extra = [a["args"] for a in SPEC.get("append", []) if re.search(a["match"], text)]
    return " ".join([text] + extra)


def plan(command: Command) -> Planned:
    """What CI does with ``command``: its ``not_run`` entry (exactly one may match) or a run."""
    entries = [e for e in SPEC.get("not_run", []) if re.search(e["match"], command.text)]
    assert len(entries) <= 1, f"{command.where(REPO)}: several not_run entries match {command.text!r}"
    text = substitute(command.text)
    if entries:
        return Planned(command, text, entries[0]["check"], entries[0]["reason"])
    return Planned(command, text)


PLANS = [plan(c) for c in documented_commands(REPO)]


def test_the_documents_have_commands_and_every_not_run_entry_is_used():
    assert len(PLANS) >= 40, [p.command.text for p in PLANS]        # the parser finds the documents' blocks
    for entry in SPEC["not_run"]:
        assert entry.get("reason") and entry.get("check") in ("bash-n", "shell", "parse", "dockerfile"), entry
        assert any(re.search(entry["match"], p.command.text) for p in PLANS), f"unused not_run entry {entry}"


def test_every_run_command_starts_with_a_known_program():
    scripts = set(console_scripts())
    for p in PLANS:
        if p.check is None:
            words = shlex.split(p.text)
            program = words[0]
            known = program in scripts or (program == "python" and (REPO / words[1]).is_file())
            assert known, f"{p.where}: {p.command.text!r}: not a vireid command or a repository script; make it " \
                          f"runnable in tests/docs/substitutions.yaml or list it under not_run with the reason"


# ----------------------------------------------------------------------------- not run: checked
#: ``docker run`` options whose value is the next word (the image is the first other word that names it)
DOCKER_VALUE_OPTIONS = {"-v", "--volume", "-e", "--env", "--gpus", "--name", "-w", "--workdir", "-u", "--user",
                        "--entrypoint", "--network", "--shm-size", "-p", "--publish", "--mount", "--ipc", "--env-file"}

def _words(text: str) -> List[str]:
    """``text`` split as the shell would, ``$(which NAME)`` read as ``NAME``."""
    return shlex.split(re.sub(r"\$\(which (\S+)\)", r"\1", text))


def check_parses(words: List[str]) -> None:
    """Parse ``words`` as the program it names would (raises its usage error)."""
    program, args = words[0], words[1:]
    scripts = console_scripts()
    name = Path(program).name
    if name in scripts:
        parse_click(click_command(scripts[name]), args, name)
    elif name in ("python", "python3") or program.endswith("/python"):
        if args[:1] == ["-m"]:
            parse_click(click_command(args[1] + ":main"), args[2:], args[1])
        else:
            parse_argparse_script(REPO / args[0], args[1:])
    elif name == "torchrun":
        ns = parse_argparse_module("torch.distributed.run", args)
        inner = ([sys.executable, "-m"] if ns.module else []) + [ns.training_script] + list(ns.training_script_args)
        check_parses(inner)
    elif name == "docker":
        assert args[0] == "run", words
        image = re.compile(SPEC["docker_image"])
        at = next(i for i, w in enumerate(args) if image.match(w) and args[i - 1] not in DOCKER_VALUE_OPTIONS)
        check_parses(args[at + 1:])                  # the image's command: a console script or torchrun
    else:
        raise AssertionError(f"no parser for {program!r}")


@pytest.mark.parametrize("planned", [p for p in PLANS if p.check is not None], ids=lambda p: p.where)
def test_commands_not_run_are_checked(planned):
    words = _words(planned.text)
    if planned.check == "bash-n":
        assert words[0] == "bash", planned.text
        res = subprocess.run(["bash", "-n", str(REPO / words[1])], capture_output=True, text=True)
        assert res.returncode == 0, f"{planned.where}: {res.stderr}"
    elif planned.check == "shell":                   # a plain shell line: its syntax
        res = subprocess.run(["bash", "-n", "-c", planned.text], capture_output=True, text=True)
        assert res.returncode == 0, f"{planned.where}: {res.stderr}"
    elif planned.check == "dockerfile":
        assert words[:2] == ["docker", "build"] and (REPO / words[-1] / "Dockerfile").is_file(), planned.text
    else:
        try:
            check_parses(words)
        except (click.UsageError, SystemExit) as exc:
            raise AssertionError(f"{planned.where}: {planned.command.text!r} does not parse: {exc}") from None


# ----------------------------------------------------------------------------- run
def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def _bash(text: str, cwd: Path, what: str) -> None:
    code, out, err = run_bounded(["bash", "-c", "set -eo pipefail\n" + text], COMMAND_TIMEOUT, what, cwd=cwd,
                                 env=_env())
    assert code == 0, f"{what} failed (exit {code}):\n{out[-3000:]}\n{err[-3000:]}"


def _in_process(words: List[str]) -> Optional[int]:
    """Run a console script (its entry point) or ``python SCRIPT.py`` in this process, as its
    console entry would (the interpreter's start-up is most of a tiny command's time);
    ``None`` for another program. Returns the exit status."""
    program, args = words[0], words[1:]
    target = console_scripts().get(program)
    argv = sys.argv
    try:
        if target is not None:
            module, function = target.split(":")
            getattr(importlib.import_module(module), function)(args)
        elif program == "python" and args and args[0].endswith(".py"):
            sys.argv = list(args)
            runpy.run_path(args[0], run_name="__main__")
        else:
            return None
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        sys.argv = argv
    return 0


def run_documented(text: str, cwd: Path, what: str) -> None:
    """Run ``text`` in ``cwd``: each ``&&``-joined part of plain words in this process when it
    is a vireid command or a repository script, any other shell line with bash."""
    if re.search(r"[|;<>$`*?]|&(?!&)", text):
        return _bash(text, cwd, what)
    words = _words(text)
    starts = [0] + [i + 1 for i, w in enumerate(words) if w == "&&"]
    for start in starts:
        end = words.index("&&", start) if "&&" in words[start:] else len(words)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = _in_process(words[start:end])
        if code is None:
            return _bash(text, cwd, what)
        assert code == 0, f"{what} failed (exit {code}):\n{out.getvalue()[-3000:]}\n{err.getvalue()[-3000:]}"


@pytest.mark.slow
@pytest.mark.timeout(2400)     # 295 s of CPU time measured; the suite's 900 s is for hung tests
def test_documented_commands_run(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    ws.mkdir()
    for name in SPEC.get("links", []):
        (ws / name).symlink_to(REPO / name)
    monkeypatch.chdir(ws)
    for line in SPEC.get("setup", []):
        run_documented(line, ws, f"setup command {line!r} (tests/docs/substitutions.yaml)")
    for p in PLANS:
        if p.check is None:
            run_documented(p.text, ws, f"{p.where}: {p.command.text!r}, run here as {p.text!r}")


@pytest.mark.parametrize("text", [
    "vireid-prep heatmaps --dataset sysu --root r --out o --devic cpu",
    "torchrun --nproc-per-node 4 $(which vireid-train) --config c.yaml --cache c --out r --bogus",
    "torchrun --no-such-option 4 $(which vireid-train) --config c.yaml --cache c --out r",
    "docker run --gpus all -v a:/b vireid vireid-eval --checkpoint x --cache c --mode some",
    "docker run --gpus all vireid torchrun --nproc-per-node 4 -m vireid.cli.train --cache c --out r",
    "python benchmarks/gpu_check.py --only train --budget-s soon",
])
def test_the_parse_check_catches_a_wrong_option(text):
    with pytest.raises((click.UsageError, SystemExit)):
        check_parses(_words(text))
