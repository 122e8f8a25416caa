"""Scanners on tiny trees in the real layouts: every kind of problem reported with its path."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from vireid.data.manifest import Manifest, ManifestError
from vireid.data.scan import scan
from vireid.data.scan_checks import ScanError
from tests.data.trees import SYSU_SPLITS, make_lip, make_regdb, make_sysu


def kinds(exc: ScanError) -> set:
    return {p.kind for p in exc.problems if p.fatal}


def test_sysu_clean_tree(tmp_path):
    spec = make_sysu(tmp_path)
    m = scan("sysu", tmp_path, spec=spec)
    assert m.counts()["identities"] == 6
    assert {r.split for r in m.records} == {"train", "val", "test"}
    rec = m.by_path()["cam3/0007/0001.jpg"]
    assert (rec.pid, rec.camid, rec.modality, rec.split) == (7, 3, "ir", "test")
    assert (rec.height, rec.width) == (16, 8)
    assert m.splits["id_lists"]["test"] == SYSU_SPLITS["test"]
    assert m.layout(["cam3"])["cam3"]["0007"] == ["0001.jpg", "0002.jpg"]


def test_sysu_real_counts_enforced_without_allow_partial(tmp_path):
    make_sysu(tmp_path)
    with pytest.raises(ScanError) as ei:
        scan("sysu", tmp_path)         # declared real sizes: 491 identities ...
    assert "count-mismatch" in kinds(ei.value)
    assert "found 6, the dataset has 491" in str(ei.value)
    m = scan("sysu", tmp_path, allow_partial=True)
    assert m.partial and any("491" in w for w in m.warnings)


def test_sysu_reports_every_problem_with_paths(tmp_path):
    spec = make_sysu(tmp_path)
    (tmp_path / "cam1" / "0001" / "0001.jpg").write_bytes(b"")                 # zero-byte
    (tmp_path / "cam4" / "0002" / "0001.jpg").write_bytes(b"not a jpeg at all")  # corrupt
    shutil.rmtree(tmp_path / "cam5")                                           # missing camera
    (tmp_path / "cam6" / "notes").mkdir()                                      # extra folder
    (tmp_path / "exp" / "val_id.txt").write_text("5,x9\n")                     # malformed id
    with pytest.raises(ScanError) as ei:
        scan("sysu", tmp_path, spec=spec)
    text = str(ei.value)
    assert f"{tmp_path / 'cam1' / '0001' / '0001.jpg'}: corrupt-image: zero-byte file" in text
    assert f"{tmp_path / 'cam4' / '0002' / '0001.jpg'}: corrupt-image: cannot be decoded" in text
    assert f"{tmp_path / 'cam5'}: missing-folder" in text
    assert f"{tmp_path / 'cam6' / 'notes'}: extra-entry" in text
    assert f"{tmp_path / 'exp' / 'val_id.txt'}:1: malformed-list: 'x9'" in text
    assert {"corrupt-image", "missing-folder", "extra-entry", "malformed-list", "count-mismatch"} <= kinds(ei.value)


def test_sysu_listed_id_without_images(tmp_path):
    spec = make_sysu(tmp_path)
    (tmp_path / "exp" / "test_id.txt").write_text("7,8,9\n")
    with pytest.raises(ScanError) as ei:
        scan("sysu", tmp_path, spec=spec)
    assert "id-without-images" in kinds(ei.value)
    assert "[9]" in str(ei.value)


def test_missing_root_is_one_problem(tmp_path):
    with pytest.raises(ScanError) as ei:
        scan("sysu", tmp_path / "nope")
    assert [p.kind for p in ei.value.problems] == ["missing-root"]


def test_manifest_hash_stable_and_sensitive(tmp_path):
    spec = make_sysu(tmp_path / "a")
    h1 = scan("sysu", tmp_path / "a", spec=spec).hash
    assert scan("sysu", tmp_path / "a", spec=spec).hash == h1
    shutil.copytree(tmp_path / "a", tmp_path / "b")              # moved root: same content, same hash
    assert scan("sysu", tmp_path / "b", spec=spec).hash == h1
    p = tmp_path / "b" / "cam1" / "0001" / "0002.jpg"
    import cv2, numpy as np
    p.write_bytes(cv2.imencode(".jpg", np.full((16, 8, 3), 200, np.uint8))[1].tobytes())
    assert scan("sysu", tmp_path / "b", spec=spec).hash != h1    # one file's bytes changed


def test_manifest_roundtrip_and_tamper_detection(tmp_path):
    spec = make_sysu(tmp_path / "d")
    m = scan("sysu", tmp_path / "d", spec=spec)
    out = tmp_path / "m.json"
    m.save(out)
    again = Manifest.load(out)
    assert again.hash == m.hash and again.records == m.records
    doc = json.loads(out.read_text())
    doc["records"][0]["pid"] = 999
    out.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match="was edited"):
        Manifest.load(out)
    with pytest.raises(ManifestError, match="not found"):
        Manifest.load(tmp_path / "absent.json")


def test_regdb_clean_tree_and_trials(tmp_path):
    spec = make_regdb(tmp_path)
    m = scan("regdb", tmp_path, spec=spec)
    assert m.counts() == {"images": 16, "identities": 4, "rgb_images": 8, "ir_images": 8}
    t1 = m.splits["trial:1"]
    assert set(t1) == {"train:visible", "train:thermal", "test:visible", "test:thermal"}
    assert len(t1["train:visible"]) == 4 and {lab for _, lab in t1["train:visible"]} == {0, 1}


def test_regdb_malformed_and_unknown_lines(tmp_path):
    spec = make_regdb(tmp_path)
    idx = tmp_path / "idx" / "train_visible_2.txt"
    lines = idx.read_text().splitlines()
    lines[1] = "Visible/1/missing.bmp"                  # no label
    lines.append("Visible/99/ghost.bmp 0")              # not an image of the dataset
    idx.write_text("\n".join(lines) + "\n")
    (tmp_path / "idx" / "test_thermal_1.txt").unlink()
    with pytest.raises(ScanError) as ei:
        scan("regdb", tmp_path, spec=spec)
    text = str(ei.value)
    assert f"{idx}:2: malformed-line" in text
    assert f"{idx}:{len(lines)}: unknown-image: Visible/99/ghost.bmp" in text
    assert f"{tmp_path / 'idx' / 'test_thermal_1.txt'}: missing-file" in text


def test_regdb_train_test_overlap_detected(tmp_path):
    spec = make_regdb(tmp_path)
    train = (tmp_path / "idx" / "train_visible_1.txt").read_text()
    (tmp_path / "idx" / "test_visible_1.txt").write_text(train)
    (tmp_path / "idx" / "test_thermal_1.txt").write_text((tmp_path / "idx" / "train_thermal_1.txt").read_text())
    with pytest.raises(ScanError) as ei:
        scan("regdb", tmp_path, spec=spec)
    assert "split-overlap" in kinds(ei.value)


def test_lip_tree_keypoints_and_nan(tmp_path):
    spec = make_lip(tmp_path)
    m = scan("lip", tmp_path, spec=spec)
    assert m.counts()["images"] == 5
    first = m.by_path()["TrainVal_images/train_images/100000_200000.jpg"]
    assert first.keypoints[9] == [None, None, None]
    assert first.keypoints[3] == [3.0, 6.0, 1.0]


def test_lip_malformed_csv_line_named(tmp_path):
    spec = make_lip(tmp_path)
    csv = tmp_path / "TrainVal_pose_annotations" / "lip_val_set.csv"
    lines = csv.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 2)[0]               # two fields short
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScanError) as ei:
        scan("lip", tmp_path, spec=spec)
    assert f"{csv}:2: malformed-line: expected 49 comma-separated fields, got 47" in str(ei.value)


def test_skip_unreadable_leaves_the_image_out_and_lists_it(tmp_path):
    """RegDB: the left-out image also leaves the trial tables (no 'unknown-image' error)."""
    spec = make_regdb(tmp_path / "r")
    bad = "Thermal/2/male_front_t_00201_2.bmp"
    (tmp_path / "r" / bad).write_bytes(b"")
    with pytest.raises(ScanError, match="zero-byte"):
        scan("regdb", tmp_path / "r", spec=spec, allow_partial=True)
    m = scan("regdb", tmp_path / "r", spec=spec, allow_partial=True, skip_unreadable=True)
    assert m.skipped == [{"path": bad, "reason": "zero-byte file"}]
    assert bad not in m.by_path()
    listed = [row[0] for table in m.splits.values() for rows in table.values() for row in rows]
    assert bad not in listed and len(listed) > 0
