"""The shell commands a Markdown document shows: its fenced blocks tagged ``bash``, ``sh``,
``shell`` or ``console``, one command per logical line.

A fence is three or more backticks or tildes, indented at most three spaces; it closes at a
line of the same character at least as long (CommonMark). In ``console`` blocks only the
lines after a ``$`` prompt (and their continuations) are commands, the rest is output. A
trailing ``\\`` continues a command on the next line; a ``#`` that starts a word outside
quotes starts a comment (bash's rule), and comment-only lines are not commands.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Sequence

SHELL_LANGS = ("bash", "sh", "shell", "console")
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)")


@dataclass(frozen=True)
class Block:
    """A fenced block: the document, the line of its opening fence (1-based), its info word."""

    path: Path
    line: int
    lang: str
    lines: Sequence[str]


@dataclass(frozen=True)
class Command:
    """One command as written (continuations joined with spaces), where it starts."""

    path: Path
    line: int
    text: str

    def where(self, root: Path) -> str:
        try:
            name = self.path.relative_to(root)
        except ValueError:
            name = self.path
        return f"{name}:{self.line}"


def fenced_blocks(path: Path) -> List[Block]:
    """Every fenced block of the Markdown file ``path``, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: List[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(2), m.group(3).lower(), i
        body: List[str] = []
        i += 1
        while i < len(lines):
            close = re.match(r"^ {0,3}(`{3,}|~{3,})\s*$", lines[i])
            if close and close.group(1)[0] == fence[0] and len(close.group(1)) >= len(fence):
                break
            body.append(lines[i])
            i += 1
        blocks.append(Block(path, start + 1, lang, tuple(body)))
        i += 1
    return blocks


def strip_comment(line: str) -> str:
    """``line`` without its trailing comment (a ``#`` starting a word outside quotes)."""
    quote = ""
    prev = " "
    for k, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"':
                pass
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "#" and prev.isspace():
            return line[:k].rstrip()
        prev = ch
    return line.rstrip()


def commands(block: Block) -> Iterator[Command]:
    """The commands of a shell block (none for another language)."""
    if block.lang not in SHELL_LANGS:
        return
    console = block.lang == "console"
    pending: List[str] = []
    start = 0
    in_command = False
    for k, raw in enumerate(block.lines):
        number = block.line + 1 + k
        text = raw
        if not pending:
            if console:
                if not raw.lstrip().startswith("$ "):
                    continue
                text = raw.lstrip()[2:]
            start = number
        code = strip_comment(text).strip()
        in_command = code.endswith("\\")
        if in_command:
            pending.append(code[:-1].strip())
            continue
        pending.append(code)
        joined = " ".join(p for p in pending if p)
        pending = []
        if joined:
            yield Command(block.path, start, joined)
    if pending and any(pending):
        yield Command(block.path, start, " ".join(p for p in pending if p))


#: a Markdown link's target: ``[text](target)``, the target up to a space or the closing parenthesis
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def links(path: Path) -> List[str]:
    """The targets of the inline Markdown links of ``path``, in order (fenced blocks included)."""
    return _LINK.findall(path.read_text(encoding="utf-8"))


def documents(root: Path) -> List[Path]:
    """The Markdown documents whose commands CI runs: README.md, then docs/**/*.md in the order the
    README first links them (a reader's order: a page's commands may read what an earlier page's
    wrote), then any page it does not link, by name."""
    docs = sorted((root / "docs").glob("**/*.md")) if (root / "docs").is_dir() else []
    readme = root / "README.md"
    linked = [(root / t.split("#")[0]).resolve() for t in links(readme) if t.split("#")[0].endswith(".md")]
    rank = {p: i for i, p in reversed(list(enumerate(linked)))}
    return [readme] + sorted(docs, key=lambda d: (rank.get(d.resolve(), len(rank)), str(d)))


def documented_commands(root: Path) -> List[Command]:
    """Every command of every shell block of :func:`documents`, in their order."""
    return [c for doc in documents(root) for b in fenced_blocks(doc) for c in commands(b)]
