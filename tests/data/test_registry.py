"""The dataset registry: a fourth dataset is a spec, a reader and a registry line.

The toy dataset below is added the way docs/datasets.md describes, at test time and
touching no other module: its spec is a YAML file, its reader a DatasetReader subclass
here, registered with ``registry.register``. The scanner, ``vireid-prep manifest``, the
training config check, the evaluation metric and the results table then know it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vireid.data import registry
from vireid.data.manifest import Manifest, Record
from vireid.data.protocol import Sample
from vireid.data.protocol_sets import ProtocolSets
from vireid.data.readers import DatasetReader
from vireid.data.readers.common import camera_images, read_id_list
from vireid.data.scan import scan
from vireid.data.scan_checks import Collector, ScanError, check_count, records_from_images

TOY_SPEC = r"""name: toy
full_name: Toy-VI
image_ext: .jpg
modalities: {rgb: day, ir: night}
cameras:
  day: {modality: rgb}
  night: {modality: ir}
layout:
  id_dir_pattern: '^\d{3}$'
  file_pattern: '^.+\.jpg$'
  test_ids: test_ids.txt
expected:
  identities: 4
protocol:
  trials: 1
  first_trial: 0
"""


class ToyReader(DatasetReader):
    """``day/<3-digit id>/*.jpg``, ``night/<3-digit id>/*.jpg``, ``test_ids.txt``."""

    name = "toy"
    settings = ("Night-to-Day",)

    def __init__(self, spec_path: Path) -> None:
        self.spec_path = spec_path

    def scan(self, root: Path, spec: Any, col: Collector, jobs: int, progress: bool) -> Manifest:
        test_ids = set(read_id_list(root / spec.layout["test_ids"], col))
        found: List[Tuple[str, Dict[str, Any]]] = []
        for cam, id_dir, f in camera_images(root, spec, col, col.hard, "{camera} folder not found",
                                            "expected 3-digit identity folders", "expected .jpg images"):
            pid = int(id_dir.name)
            found.append((f"{cam.name}/{id_dir.name}/{f.name}",
                          dict(pid=pid, camera=cam.name, camid=cam.index, modality=cam.modality,
                               split="test" if pid in test_ids else "train")))
        records = records_from_images(root, found, col, jobs, progress)
        check_count(col, root, "identities", len({r.pid for r in records}), spec.expected.get("identities"))
        col.raise_if_fatal(root)
        return Manifest(dataset=spec.name, root=str(root), records=records, spec_hash=spec.content_hash,
                        splits={"id_lists": {"test": sorted(test_ids)}}, warnings=col.warnings)

    def protocol_sets(self, manifest: Manifest, options: Any, checkpoint: Mapping[str, Any]) -> Dict[str, ProtocolSets]:
        def samples(modality: str) -> List[Sample]:
            return [Sample(r.path, r.pid, r.camid) for r in manifest.select(split=["test"], modality=modality)]

        return {"Night-to-Day": ProtocolSets("toy/n2d", samples("ir"), [samples("rgb")], [0])}


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", np.full((16, 8, 3), value, np.uint8))
    path.write_bytes(buf.tobytes())


@pytest.fixture
def toy(tmp_path: Path):
    spec_path = tmp_path / "toy.yaml"
    spec_path.write_text(TOY_SPEC)
    reader = registry.register(ToyReader(spec_path))
    root = tmp_path / "Toy"
    for pid in (1, 2, 3, 4):
        for cam in ("day", "night"):
            for k in range(2):
                _image(root / cam / f"{pid:03d}" / f"{k}.jpg", 40 * pid + k)
    (root / "test_ids.txt").write_text("3,4\n")
    yield reader, root
    registry.unregister("toy")
    assert "toy" not in registry.names()


def test_builtin_datasets_come_from_the_registry() -> None:
    from vireid.data.spec import DATASETS

    assert registry.names()[:4] == ("sysu", "regdb", "llcm", "lip") and DATASETS == registry.names()
    assert "lip" not in registry.reid_names() and {"sysu", "regdb", "llcm"} <= set(registry.reid_names())
    assert set(registry.synth_layouts()) == {"sysu", "regdb", "llcm", "lip"}
    for name in registry.names():
        reader = registry.get(name)
        assert reader.name == name and reader.spec().name == name
    with pytest.raises(registry.UnknownDataset, match="unknown dataset 'market': choose one of sysu, regdb"):
        registry.get("market")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("sysu"))


def test_a_fourth_dataset_is_a_spec_a_reader_and_a_registry_line(toy) -> None:
    reader, root = toy
    assert "toy" in registry.names() and "toy" in registry.reid_names() and "toy" not in registry.synth_layouts()
    manifest = scan("toy", root)
    assert manifest.dataset == "toy" and len(manifest.records) == 16
    assert {r.split for r in manifest.records if r.pid in (3, 4)} == {"test"}
    assert {(r.camera, r.camid, r.modality) for r in manifest.records} == {("day", 1, "rgb"), ("night", 2, "ir")}

    # a problem is reported as for the built-in datasets: one line, the path at fault
    (root / "night" / "0005").mkdir()
    with pytest.raises(ScanError) as err:
        scan("toy", root)
    assert [p.kind for p in err.value.problems if p.fatal] == ["extra-entry"]
    assert str(root / "night" / "0005") in str(err.value)


def test_the_commands_and_the_evaluation_know_the_fourth_dataset(toy, tmp_path: Path) -> None:
    from pipeline.cli import cli as prep
    from vireid.engine.config import load_config
    from vireid.engine.evaluate import EvalOptions, evaluate_sets
    from vireid.evaluation.report import SETTINGS, markdown_table

    reader, root = toy
    (root / "night" / "0005").rmdir() if (root / "night" / "0005").exists() else None
    res = CliRunner().invoke(prep, ["manifest", "--dataset", "toy", "--root", str(root),
                                    "--out", str(tmp_path / "toy.json"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "16 images (8 RGB, 8 IR), 4 identities" in res.output
    assert Manifest.load(tmp_path / "toy.json").dataset == "toy"
    assert load_config(None, ["dataset=toy"]).dataset == "toy"              # vireid-train accepts it

    manifest = Manifest.load(tmp_path / "toy.json")
    (sets,) = reader.protocol_sets(manifest, EvalOptions(), {}).values()
    row_of = {p: i for i, p in enumerate(sets.paths())}
    feats = np.eye(len(row_of), dtype=np.float32)
    for p, i in row_of.items():                                             # one direction per identity
        feats[i] = 0
        feats[i, manifest.by_path()[p].pid] = 1
    result = evaluate_sets(sets, {"f": feats}, row_of, "toy")
    assert result.summary["f"].mean["R1"] == 1.0
    assert SETTINGS["toy"] == ("Night-to-Day",)
    assert "Night-to-Day" in markdown_table({"f_ALL": {"Night-to-Day": result.summary["f"].mean}}, "toy")


def test_unknown_dataset_is_refused_by_the_commands(tmp_path: Path) -> None:
    from pipeline.cli import cli as prep
    from vireid.engine.config import load_config
    from vireid.config_loader import ConfigError

    res = CliRunner().invoke(prep, ["manifest", "--dataset", "toy", "--root", str(tmp_path), "--out",
                                    str(tmp_path / "m.json")])
    assert res.exit_code == 2 and "'toy' is not one of 'sysu', 'regdb', 'llcm', 'lip'" in res.output
    with pytest.raises((ConfigError, ValueError), match="dataset must be one of 'sysu', 'regdb', 'llcm'"):
        load_config(None, ["dataset=lip"])
