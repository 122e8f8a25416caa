"""The README is a user's front page (issue 29): at most 300 lines, starting with the two
commands of a fresh machine, and a way into every page of docs/; every link between the
README and the pages leads to a file and a heading that exist."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Set

import pytest

from tests.docs.markdown_commands import commands, documents, fenced_blocks, links

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PAGES = sorted((REPO / "docs").glob("**/*.md"))
MAX_LINES = 300


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> Set[str]:
    """The anchors of the headings of ``path`` (outside fenced blocks), duplicates numbered as GitHub does."""
    fenced = {b.line + k for b in fenced_blocks(path) for k in range(len(b.lines) + 2)}
    seen: dict = {}
    out = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = re.match(r"^#{1,6} (.*?)#*\s*$", line)
        if m and number not in fenced:
            base = slug(m.group(1))
            out.add(base if base not in seen else f"{base}-{seen[base]}")
            seen[base] = seen.get(base, 0) + 1
    return out


def test_the_readme_is_at_most_300_lines():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"README.md has {n} lines; move a topic to a page of docs/ and link it"


def test_the_readme_starts_with_the_two_commands():
    first = next(b for b in fenced_blocks(README) if b.lang == "bash")
    assert [c.text for c in commands(first)] == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    before = README.read_text(encoding="utf-8").splitlines()[:first.line - 1]
    assert [ln for ln in before if ln.startswith("## ")] == ["## Two commands on a fresh machine"], before


def test_every_page_of_docs_is_linked_from_the_readme():
    assert PAGES, "docs/ has no page"
    linked = {(README.parent / t.split("#")[0]).resolve() for t in links(README) if not re.match(r"\w+:", t)}
    missing = [str(p.relative_to(REPO)) for p in PAGES if p.resolve() not in linked]
    assert not missing, f"pages of docs/ the README does not link: {missing}"
    # the commands' test covers every page, the README first
    assert documents(REPO)[0] == README and set(documents(REPO)[1:]) == set(PAGES)


@pytest.mark.parametrize("doc", [README] + PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_between_the_documents_resolve(doc):
    for target in links(doc):
        if re.match(r"\w+:", target):                     # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        assert dest.exists(), f"{doc.relative_to(REPO)}: link {target!r}: {dest} does not exist"
        if anchor and dest.suffix == ".md":
            assert anchor in anchors(dest), f"{doc.relative_to(REPO)}: link {target!r}: no heading with anchor " \
                                            f"{anchor!r} in {dest.relative_to(REPO)}: {sorted(anchors(dest))}"


def test_the_slug_is_githubs():
    assert slug("Multi-GPU: `torchrun`") == "multi-gpu-torchrun"
    assert slug("The pose branch's own accuracy: PCKh per modality, and `pose.png`") == \
        "the-pose-branchs-own-accuracy-pckh-per-modality-and-posepng"
    assert slug("A GPU host's check: `benchmarks/gpu_check.py`") == "a-gpu-hosts-check-benchmarksgpu_checkpy"
