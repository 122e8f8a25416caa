"""Synthetic data sets (pipeline.synth): exact real layouts, determinism, ground truth, content."""
from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np
import pytest

from pipeline.synth import SYNTH_VERSION, synthesize
from pipeline.synth.keypoints import KEYPOINTS_FILE, KEYPOINTS_FORMAT
from pipeline.synth.randomness import rng_for
from pipeline.synth.render import OCCLUDED, VISIBLE, Placement, render_person
from pipeline.synth.skeleton import Pose
from pipeline.synth.traits import nir_level, sample_traits
from vireid.data.scan import scan
from vireid.data.scan_checks import SYNTH_MARKER
from vireid.data.spec import load_spec
from vireid.pose.joints import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS

SYSU = load_spec("sysu")
REGDB = load_spec("regdb")
LIP = load_spec("lip")
J = JOINT_INDEX


def _files(root: Path) -> Dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _images(root: Path, ext: str) -> List[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(f"*{ext}"))


@pytest.fixture(scope="module")
def sysu(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sysu") / "SYSU-MM01"
    synthesize("sysu", out, ids=16, seed=3, images_per_camera=3)
    return out


@pytest.fixture(scope="module")
def regdb(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("regdb") / "RegDB"
    synthesize("regdb", out, ids=6, seed=5, images_per_camera=4)
    return out


@pytest.fixture(scope="module")
def lip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lip") / "LIP"
    synthesize("lip", out, ids=5, seed=7, images_per_camera=4)
    return out


# ------------------------------------------------------------------ determinism, output folder
@pytest.mark.parametrize("layout,ids", [("sysu", 4), ("regdb", 2), ("lip", 2)])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, layout: str, ids: int) -> None:
    a = _files(synthesize(layout, tmp_path / "a", ids=ids, seed=11, images_per_camera=1).out)
    b = _files(synthesize(layout, tmp_path / "b", ids=ids, seed=11, images_per_camera=1).out)
    c = _files(synthesize(layout, tmp_path / "c", ids=ids, seed=12, images_per_camera=1).out)
    assert len(a) > 3 and a == b
    ext = load_spec(layout).image_ext
    a_images = {v for k, v in a.items() if k.endswith(ext)}
    c_images = {v for k, v in c.items() if k.endswith(ext)}
    assert len(a_images) == len([k for k in a if k.endswith(ext)]) > 0
    assert not a_images & c_images                                    # no image repeated under another seed


def test_refuses_foreign_non_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a synthetic data set"):
        synthesize("sysu", out, ids=4, seed=0, images_per_camera=1)
    assert (out / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["data"]          # no staging folder left
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        synthesize("lip", afile, ids=2, seed=0, images_per_camera=1)


def test_replaces_own_output_but_not_another_layout(tmp_path: Path) -> None:
    out = tmp_path / "lip"
    synthesize("lip", out, ids=2, seed=0, images_per_camera=1)
    first = _files(out)
    synthesize("lip", out, ids=3, seed=1, images_per_camera=1)        # same layout: replaced
    second = _files(out)
    assert second != first
    assert json.loads((out / SYNTH_MARKER).read_text())["ids"] == 3
    with pytest.raises(FileExistsError, match="'lip'"):
        synthesize("regdb", out, ids=2, seed=0, images_per_camera=1)
    assert _files(out) == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lip"]


def test_bad_arguments_leave_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        synthesize("regdb", tmp_path / "r", ids=5, seed=0)
    with pytest.raises(ValueError, match="at least 4"):
        synthesize("sysu", tmp_path / "s", ids=3, seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        synthesize("lip", tmp_path / "l", ids=2, seed=-1)
    with pytest.raises(ValueError, match="unknown layout"):
        synthesize("market", tmp_path / "m", ids=2, seed=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fixture", ["sysu", "regdb", "lip"])
def test_scanner_accepts_output_and_marker(request, fixture: str) -> None:
    root = request.getfixturevalue(fixture)
    manifest = scan(fixture, root)
    assert manifest.warnings == []
    marker = json.loads((root / SYNTH_MARKER).read_text())
    assert marker["layout"] == fixture and marker["version"] == SYNTH_VERSION
    assert sum(marker["images"].values()) == len(manifest.records)
    assert not any(p.name.startswith(".") for p in root.parent.iterdir())   # staging folder gone


# ------------------------------------------------------------------ SYSU-MM01 layout
def test_sysu_layout_and_id_lists(sysu: Path) -> None:
    id_re, file_re = re.compile(SYSU.layout["id_dir_pattern"]), re.compile(SYSU.layout["file_pattern"])
    cams = {c.name for c in SYSU.cameras}
    top = {p.name for p in sysu.iterdir()}
    assert top == cams | {"exp", KEYPOINTS_FILE, SYNTH_MARKER}
    for rel in _images(sysu, SYSU.image_ext):
        cam, pid, name = rel.split("/")
        assert cam in cams and id_re.match(pid) and file_re.match(name), rel
    for cam in cams:   # files numbered 0001.. without gaps in every folder
        for id_dir in (sysu / cam).iterdir():
            names = sorted(p.name for p in id_dir.iterdir())
            assert names == [f"{i:04d}{SYSU.image_ext}" for i in range(1, len(names) + 1)]
    lists = {}
    for split, rel in SYSU.layout["id_lists"].items():
        text = (sysu / rel).read_text()
        assert re.fullmatch(r"\d+(,\d+)*\n?", text), text
        lists[split] = [int(t) for t in text.split(",")]
    all_ids = sorted(sum(lists.values(), []))
    assert len(all_ids) == len(set(all_ids)) == 16                   # disjoint, no id twice
    with_images = {int(rel.split("/")[1]) for rel in _images(sysu, SYSU.image_ext)}
    assert with_images == set(all_ids)                                # covering
    assert all_ids != list(range(1, 17))                              # numbers skip, like the real set
    assert len(lists["test"]) >= 2 and len(lists["val"]) >= 1 and len(lists["train"]) > len(lists["test"])


def test_sysu_camera_coverage(sysu: Path) -> None:
    cams_of: Dict[int, set] = {}
    for rel in _images(sysu, SYSU.image_ext):
        cams_of.setdefault(int(rel.split("/")[1]), set()).add(SYSU.camera(rel.split("/")[0]))
    for pid, cams in cams_of.items():
        assert {c.modality for c in cams} == {"rgb", "ir"}, pid
    assert any(not any(c.indoor for c in cams) for cams in cams_of.values())   # some never indoors
    assert any(len(cams) < len(SYSU.cameras) for cams in cams_of.values())
    sizes = {cv2.imread(str(sysu / rel)).shape[:2] for rel in _images(sysu, SYSU.image_ext)[:40]}
    assert len(sizes) > 5 and all(1.4 < h / w < 2.9 for h, w in sizes)         # varied ~2:1 crops


# ------------------------------------------------------------------ RegDB layout
def test_regdb_layout_and_names(regdb: Path) -> None:
    file_re = re.compile(REGDB.layout["file_pattern"])
    for cam in REGDB.cameras:
        letter = "v" if cam.modality == "rgb" else "t"
        ids = sorted(int(p.name) for p in (regdb / cam.name).iterdir())
        assert ids == list(range(1, 7))
        for pid in ids:
            names = sorted(p.name for p in (regdb / cam.name / str(pid)).iterdir())
            assert len(names) == 4
            for name in names:
                assert file_re.match(name)
                assert re.fullmatch(rf"(male|female)_(front|back)_{letter}_\d{{5}}_{pid}\.bmp", name), name
                assert cv2.imread(str(regdb / cam.name / str(pid) / name)).shape == (128, 64, 3)
    # visible and thermal images are pairs: the same frame numbers
    frames = [sorted(re.search(r"_(\d{5})_", p.name).group(1) for p in (regdb / c.name).rglob("*.bmp"))
              for c in REGDB.cameras]
    assert frames[0] == frames[1]


def test_regdb_idx_files(regdb: Path) -> None:
    trials = REGDB.evaluation.trials
    assert tuple(trials) == tuple(range(1, 11))
    line_re = re.compile(r"^(\S+)/(\d+)/(\S+\.bmp) (\d+)$")
    splits_seen = set()
    for trial in trials:
        ids_of: Dict[Tuple[str, str], List[int]] = {}
        for split in REGDB.layout["idx_splits"]:
            for cam in REGDB.cameras:
                path = regdb / REGDB.layout["idx_file"].format(split=split, modality=cam.idx_name, trial=trial)
                lines = path.read_text().splitlines()
                pids = []
                for line in lines:
                    m = line_re.match(line)
                    assert m, line
                    assert m.group(1) == cam.name and (regdb / line.split()[0]).is_file()
                    pids.append(int(m.group(2)))
                order = sorted(set(pids))
                for line, pid in zip(lines, pids):
                    assert int(line.split()[1]) == order.index(pid)
                assert len(lines) == 4 * len(order)
                ids_of[(split, cam.name)] = order
        train = ids_of[("train", "Visible")]
        test = ids_of[("test", "Visible")]
        assert train == ids_of[("train", "Thermal")] and test == ids_of[("test", "Thermal")]
        assert not set(train) & set(test) and sorted(train + test) == list(range(1, 7))
        assert len(train) == len(test) == 3
        splits_seen.add(tuple(train))
    assert len(splits_seen) > 1                                       # trials differ


# ------------------------------------------------------------------ LIP layout
def test_lip_layout_and_csv(lip: Path) -> None:
    num = r"(\d+)"
    joint = rf"(?:{num},{num},([01])|nan,nan,nan)"
    row_re = re.compile(r"^(\d{6}_\d{6}\.jpg)" + "".join("," + joint for _ in range(NUM_JOINTS)) + "$")
    total, with_nan, persons = 0, 0, 0
    for split, paths in LIP.layout["splits"].items():
        rows = (lip / paths["annotations"]).read_text().splitlines()
        assert rows and rows == sorted(rows)
        names = sorted(p.name for p in (lip / paths["images"]).iterdir())
        assert [r.split(",")[0] for r in rows] == names
        for row in rows:
            assert row_re.match(row), row
            name, *vals = row.split(",")
            h, w = cv2.imread(str(lip / paths["images"] / name)).shape[:2]
            kp = np.array([float(v) for v in vals]).reshape(NUM_JOINTS, 3)
            ok = ~np.isnan(kp[:, 0])
            assert np.all((kp[ok, 0] >= 0) & (kp[ok, 0] < w) & (kp[ok, 1] >= 0) & (kp[ok, 1] < h))
            assert ok[J["B_Head"]] or ok[J["B_Pelvis"]]
            with_nan += int(not ok.all())
        total += len(rows)
        persons += len(rows) // 4
    assert total == 20 and persons == 5 and with_nan > 0
    sizes = {cv2.imread(str(p)).shape[:2] for p in lip.rglob("*.jpg")}
    assert len(sizes) > 10


def _keypoints(root: Path) -> Dict[str, np.ndarray]:
    """``root/vireid_keypoints.json`` -> ``{relative path: (16, 3) float array}``."""
    doc = json.loads((Path(root) / KEYPOINTS_FILE).read_text())
    return {rel: np.asarray(rows, dtype=np.float64) for rel, rows in doc["images"].items()}


# ------------------------------------------------------------------ ground truth
@pytest.mark.parametrize("fixture,ext", [("sysu", ".jpg"), ("regdb", ".bmp")])
def test_keypoints_side_file(request, fixture: str, ext: str) -> None:
    root = request.getfixturevalue(fixture)
    doc = json.loads((root / KEYPOINTS_FILE).read_text())
    assert doc["format"] == KEYPOINTS_FORMAT and doc["joints"] == list(JOINT_NAMES)
    kps = _keypoints(root)
    assert sorted(kps) == _images(root, ext)
    n_occluded = 0
    for rel, kp in kps.items():
        h, w = cv2.imread(str(root / rel)).shape[:2]
        assert kp.shape == (NUM_JOINTS, 3) and set(np.unique(kp[:, 2])) <= {0, 1, 2}
        shown = kp[:, 2] > 0
        assert np.all((kp[shown, 0] >= 0) & (kp[shown, 0] <= w - 1) & (kp[shown, 1] >= 0) & (kp[shown, 1] <= h - 1))
        y = kp[:, 1]
        for ankle in ("R_Ankle", "L_Ankle"):   # upright people
            assert y[J["B_Head"]] < y[J["B_Neck"]] < y[J["B_Pelvis"]] < y[J[ankle]], rel
        n_occluded += int((kp[:, 2] == 1).sum())
    assert n_occluded > 0


def test_keypoints_sit_on_the_drawn_person(sysu: Path) -> None:
    """The ground truth marks the figure: pixels at the joints differ from the background corners."""
    kps = _keypoints(sysu)
    diffs = []
    for rel in sorted(kps)[:30]:
        img = cv2.imread(str(sysu / rel)).astype(np.float32)
        kp = kps[rel]
        head = kp[J["B_Head"]]
        nx, ny = int(round(head[0])), int(round(head[1] + 4))          # just inside the head
        corner = img[:4, :4].reshape(-1, 3).mean(0)
        diffs.append(np.abs(img[ny, nx] - corner).sum())
    assert np.median(diffs) > 30


def _person(yaw: float) -> np.ndarray:
    traits = dataclasses.replace(sample_traits(rng_for(0, "sysu", 1, 0)), bag="none", hair_long=False)
    canvas = np.zeros((128, 64, 3), np.float32)
    return render_person(canvas, traits, Pose(yaw=yaw), Placement(scale=115, cx=32, top=6), "rgb")


def test_left_right_and_occlusion_follow_the_view() -> None:
    front, back, side = _person(0.0), _person(math.pi), _person(math.pi / 2)
    # facing the camera the person's right is on the image left; seen from the back it flips
    for a, b in (("R_Shoulder", "L_Shoulder"), ("R_Hip", "L_Hip"), ("R_Wrist", "L_Wrist")):
        assert front[J[a], 0] < front[J[b], 0]
        assert back[J[a], 0] > back[J[b], 0]
    assert np.all(front[:, 2] == VISIBLE)
    # facing image right the left side is away from the camera: hidden behind the torso
    assert side[J["L_Elbow"], 2] == OCCLUDED and side[J["R_Elbow"], 2] == VISIBLE


# ------------------------------------------------------------------ content: grey IR, learnable ids
@pytest.mark.parametrize("fixture,ext", [("sysu", ".jpg"), ("regdb", ".bmp")])
def test_ir_images_are_grey_rgb_are_not(request, fixture: str, ext: str) -> None:
    root = request.getfixturevalue(fixture)
    spec = load_spec(fixture)
    sat = {"rgb": [], "ir": []}
    for rel in _images(root, ext):
        img = cv2.imread(str(root / rel))
        modality = spec.camera(rel.split("/")[0]).modality
        if modality == "ir":
            assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]), rel
        sat[modality].append(cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[..., 1].mean())
    assert min(sat["rgb"]) > 10 and max(sat["ir"]) == 0


def _descriptors(root: Path, grey: bool) -> Dict[str, List[Tuple[int, np.ndarray]]]:
    out: Dict[str, List[Tuple[int, np.ndarray]]] = {"rgb": [], "ir": []}
    for rel in _images(root, SYSU.image_ext):
        cam, pid, _ = rel.split("/")
        img = cv2.imread(str(root / rel))
        h, w = img.shape[:2]
        centre = img[h // 8:h * 7 // 8, w // 4:w * 3 // 4]
        if grey:
            g = cv2.cvtColor(centre, cv2.COLOR_BGR2GRAY)
            hist = np.histogram(g, bins=16, range=(0, 256))[0].astype(np.float64)
        else:
            hist = cv2.calcHist([centre], [0, 1, 2], None, [4, 4, 4], [0, 256] * 3).ravel().astype(np.float64)
        out[SYSU.camera(cam).modality].append((int(pid), hist / hist.sum()))
    return out


def _nn_accuracy(query: List[Tuple[int, np.ndarray]], gallery: List[Tuple[int, np.ndarray]], same: bool) -> float:
    q = np.stack([d for _, d in query])
    g = np.stack([d for _, d in gallery])
    dist = ((q[:, None] - g[None]) ** 2).sum(-1)
    if same:
        np.fill_diagonal(dist, np.inf)
    qp, gp = np.array([p for p, _ in query]), np.array([p for p, _ in gallery])
    return float((gp[dist.argmin(1)] == qp).mean())


def test_identity_is_learnable_within_and_hidden_across_modalities(sysu: Path) -> None:
    chance = 1 / 16
    colour = _descriptors(sysu, grey=False)
    grey = _descriptors(sysu, grey=True)
    rgb_rgb = _nn_accuracy(colour["rgb"], colour["rgb"], same=True)
    ir_ir = _nn_accuracy(grey["ir"], grey["ir"], same=True)
    ir_rgb = _nn_accuracy(grey["ir"], grey["rgb"], same=False)
    assert rgb_rgb > 5 * chance
    assert ir_ir > 2.5 * chance
    assert ir_rgb < rgb_rgb / 3                 # intensity statistics do not carry across


def test_infrared_levels_follow_the_dye_not_the_luminance() -> None:
    """One fixed colour -> NIR map for every identity (learnable), uncorrelated with brightness."""
    traits = [sample_traits(rng_for(1, "sysu", 1, k)) for k in range(400)]
    lum = np.array([0.114 * t.top[0] + 0.587 * t.top[1] + 0.299 * t.top[2] for t in traits])
    ir = np.array([t.top_ir for t in traits])
    assert abs(np.corrcoef(lum, ir)[0, 1]) < 0.15
    assert np.std(ir) > 0.1 and np.all([t.skin_ir > t.top_ir or t.skin_ir > 0.8 for t in traits])
    for garment in ("top", "bottom", "bag"):
        got = np.array([getattr(t, garment + "_ir") for t in traits])
        want = np.array([nir_level(getattr(t, garment if garment != "bag" else "bag_colour")) for t in traits])
        assert np.mean(np.abs(got - want)) < 0.05 and np.corrcoef(got, want)[0, 1] > 0.9, garment
    contrast = np.array([abs(t.top2_ir - t.top_ir) for t in traits])
    assert contrast.min() >= 0.15 - 1e-9           # the top's pattern shows in infrared too
    # the map itself: neutral mid grey is bright, black and white dark; hues differ
    assert nir_level((0.5, 0.5, 0.5)) > 0.75
    assert nir_level((0.9, 0.9, 0.9)) < 0.25 and nir_level((0.0, 0.0, 0.0)) < 0.25
    assert abs(nir_level((0.0, 0.0, 0.9)) - nir_level((0.9, 0.0, 0.0))) > 0.3     # red vs blue


def test_random_infrared_levels_are_independent_of_the_dye_and_keep_the_person() -> None:
    """ir_levels='random': same person (colours, build, bag), garment levels unrelated to nir_level."""
    dye = [sample_traits(rng_for(1, "sysu", 1, k)) for k in range(400)]
    rnd = [sample_traits(rng_for(1, "sysu", 1, k), "random") for k in range(400)]
    for a, b in zip(dye, rnd):
        assert (a.top, a.top2, a.bottom, a.build, a.bag, a.pattern, a.skin_ir) == \
               (b.top, b.top2, b.bottom, b.build, b.bag, b.pattern, b.skin_ir)
    for garment in ("top", "bottom", "bag"):
        got = np.array([getattr(t, garment + "_ir") for t in rnd])
        want = np.array([nir_level(getattr(t, garment if garment != "bag" else "bag_colour")) for t in rnd])
        assert abs(np.corrcoef(got, want)[0, 1]) < 0.15, garment       # dye mode: > 0.9 (test above)
        assert got.min() >= 0.05 and got.max() <= 0.95 and np.std(got) > 0.2
    assert min(abs(t.top2_ir - t.top_ir) for t in rnd) >= 0.15 - 1e-9
    with pytest.raises(ValueError, match="ir_levels"):
        sample_traits(rng_for(1, "sysu", 1, 0), "thermal")


def test_synth_ir_levels_random_changes_only_the_infrared_images(tmp_path: Path) -> None:
    a = synthesize("regdb", tmp_path / "a", ids=2, seed=3, images_per_camera=1)
    b = synthesize("regdb", tmp_path / "b", ids=2, seed=3, images_per_camera=1, ir_levels="random")
    fa, fb = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.images == b.images and sorted(fa) == sorted(fb)
    assert json.loads(fb[SYNTH_MARKER])["ir_levels"] == "random"
    assert json.loads(fa[SYNTH_MARKER])["ir_levels"] == "dye"
    changed = {k for k in fa if fa[k] != fb[k] and k != SYNTH_MARKER}
    assert changed and all("Thermal" in k for k in changed), changed
    with pytest.raises(ValueError, match="no infrared"):
        synthesize("lip", tmp_path / "c", ids=2, seed=0, ir_levels="random")
