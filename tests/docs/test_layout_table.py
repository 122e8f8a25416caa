"""The README's "## Layout" table matches the tree and the layering contract: every package
of vireid/ and pipeline/ and every top-level folder has a row, every path listed exists, and
the vireid rows run bottom-up in the order of the `layers` contract of .importlinter (the one
`lint-imports` checks), with the public face above them and pipeline/ last."""
from __future__ import annotations

import configparser
import fnmatch
import re
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[2]
HEADING = "## Layout"


def layout_rows() -> List[str]:
    """The path of each row of the first table under the "## Layout" heading, in order."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADING)
    rows: List[str] = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            if rows:
                break
            continue
        cell = line.split("|")[1].strip()
        if cell in ("path", "---") or set(cell) <= {"-", " "}:
            continue
        paths = re.findall(r"`([^`]+)`", cell)
        assert len(paths) == 1, f"a row lists one path, not {cell!r}"
        rows.append(paths[0])
    assert rows, f"no table under {HEADING!r}"
    return rows


def layer_index() -> Dict[str, int]:
    """vireid's children -> their layer in .importlinter's layers contract, 0 at the ground."""
    config = configparser.ConfigParser()
    config.read(REPO / ".importlinter")
    contract = next(config[s] for s in config.sections() if config[s].get("type") == "layers")
    assert contract["containers"].split() == ["vireid"]
    layers = [line.strip() for line in contract["layers"].strip().splitlines() if line.strip()]
    out: Dict[str, int] = {}
    for level, layer in enumerate(reversed(layers)):
        for name in re.split(r"[|:]", layer):
            out[name.strip()] = level
    return out


def _ignored(name: str) -> bool:
    patterns = [p.strip().strip("/") for p in (REPO / ".gitignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    return name.startswith(".") or any(fnmatch.fnmatch(name, p) for p in patterns)


def test_every_listed_path_exists():
    for path in layout_rows():
        assert (REPO / path.rstrip("/")).exists(), f"README layout lists {path}, which does not exist"


def test_every_package_and_top_level_folder_is_listed():
    listed = {p.rstrip("/") for p in layout_rows()}
    packages = {str(init.parent.relative_to(REPO)) for root in ("vireid", "pipeline")
                for init in (REPO / root).rglob("__init__.py") if "__pycache__" not in init.parts}
    packages -= {"vireid"}                                   # the root is its own row: vireid/__init__.py
    assert "vireid/__init__.py" in listed
    missing = sorted(packages - listed)
    assert not missing, f"packages without a row in the README layout table: {missing}"
    top = {p.name for p in REPO.iterdir() if p.is_dir() and not _ignored(p.name)}
    missing = sorted(top - {p.split("/")[0] for p in listed})
    assert not missing, f"top-level folders without a row in the README layout table: {missing}"


def test_rows_run_bottom_up_in_the_layer_order():
    rows = layout_rows()
    level = layer_index()
    vireid_rows = [r for r in rows if r.startswith("vireid/") and r != "vireid/__init__.py"]
    # a sub-package's row (vireid/data/readers/) follows its package's row, inside that layer
    subs = [r for r in vireid_rows if r.rstrip("/").count("/") > 1]
    for sub in subs:
        parent = "/".join(sub.rstrip("/").split("/")[:2]) + "/"
        assert parent in rows, f"{sub}: its package {parent} has no row"
        between = rows[rows.index(parent) + 1:rows.index(sub)]
        assert rows.index(sub) > rows.index(parent) and all(r.startswith(parent) for r in between), \
            f"{sub} does not follow its package's row {parent}"
    vireid_rows = [r for r in vireid_rows if r not in subs]
    names = [r[len("vireid/"):].rstrip("/").removesuffix(".py") for r in vireid_rows]
    assert sorted(names) == sorted(level), "the vireid rows and the layers contract name other packages"
    levels = [level[n] for n in names]
    assert levels == sorted(levels), f"vireid rows out of layer order: {list(zip(names, levels))}"
    face = rows.index("vireid/__init__.py")
    assert face > max(rows.index(r) for r in vireid_rows), "the public face sits above every vireid layer"
    pipeline = [i for i, r in enumerate(rows) if r.startswith("pipeline/")]
    assert min(pipeline) > face, "pipeline/ imports vireid/: its rows come after vireid's"
