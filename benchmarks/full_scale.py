"""Full-size rehearsal: the whole pipeline on synthetic SYSU-MM01 and RegDB trees of the real sizes.

What it builds (``--scale 1.0``):

* SYSU-MM01: 491 identities in the real layout (``camN/<4-digit id>/<4-digit>.jpg``,
  ``exp/{train,val,test}_id.txt`` with 296 / 99 / 96 ids; RGB cameras 1, 2, 4, 5, IR 3, 6);
  the 395 train + val identities hold 22,258 RGB and 11,909 IR images, the 96 test
  identities 7,813 RGB (30,071 - 22,258) and 3,803 IR images (the queries). The dataset
  spec's total of 15,792 IR images is 80 more than its two splits add up to
  (11,909 + 3,803 = 15,712); a tree cannot meet both, and this one keeps the splits.
* RegDB: 412 identities x 10 visible + 10 thermal ``.bmp`` images and the 10 trials' idx files.

Every image is rendered by ``vireid-prep synth``'s renderer (:mod:`pipeline.synth`) with its
16 joints written beside the tree, so the ``keypoints`` estimator builds the heatmap cache.
Each tree carries ``vireid_synth.json`` with its own counts, so ``manifest`` checks it as
strictly as a real copy.

Stages, each in its own process (its peak RSS from ``os.wait4``: the stage's process and
the children it waited for, never another stage's): synth-sysu, synth-regdb,
manifest-sysu, manifest-regdb, heatmaps-sysu, heatmaps-regdb, verify-sysu, verify-regdb,
train-sysu (``configs/sysu.yaml``: ResNet-50, 288x144, batch 64, random start), eval-sysu
(``vireid-eval``: all + indoor search, single shot, 10 trials on the whole test set).
For each: wall time, images/s, peak RSS, bytes written; then the cache's size against the
raw images' and the training rate a 100-epoch GPU run must sustain to finish in 12 hours.

Usage::

    taskset -c 1 nice python benchmarks/full_scale.py --work /tmp/full --quick
    python benchmarks/full_scale.py --work /tmp/tiny --scale 0.02 --train-set model.backbone=resnet18 ...

``--quick`` trains 3 steps instead of 20 (nothing else changes). The work folder is
emptied first and removed at the end unless ``--keep``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: SYSU-MM01's real sizes: ids per list, and images per (split group, modality).
SYSU_IDS = {"train": 296, "val": 99, "test": 96}
SYSU_IMAGES = {("trainval", "rgb"): 22258, ("trainval", "ir"): 11909,
               ("test", "rgb"): 30071 - 22258, ("test", "ir"): 3803}
REGDB_IDS, REGDB_PER_MODALITY = 412, 10
#: The GPU target: 100 epochs in 12 hours.
TARGET_EPOCHS, TARGET_HOURS = 100, 12.0
STAGES = ("synth-sysu", "synth-regdb", "manifest-sysu", "manifest-regdb", "heatmaps-sysu", "heatmaps-regdb",
          "verify-sysu", "verify-regdb", "train-sysu", "eval-sysu")
GIB = 1024 ** 3


# ----------------------------------------------------------------------------- the trees
def sysu_plan(scale: float, seed: int) -> Tuple[Dict[str, List[int]], List[Tuple[int, int, str, int]]]:
    """``(id lists, [(k, pid, camera, image number)])`` for a SYSU-MM01 tree at ``scale``.

    Every identity is seen by at least one RGB and one IR camera (as in the real set, not
    by every camera); the images of a split group and modality are spread as evenly as
    possible over its (identity, camera) pairs, so the group totals are exactly the real
    ones times ``scale`` (at least one image per pair).
    """
    import numpy as np

    from pipeline.synth import randomness as R
    from pipeline.synth.sysu import cameras_of_identity
    from vireid.data.spec import load_spec

    spec = load_spec("sysu")
    minimum = {"train": 2, "val": 1, "test": 2}
    sizes = {s: max(minimum[s], round(n * scale)) for s, n in SYSU_IDS.items()}
    total = sum(sizes.values())
    rng = np.random.default_rng(seed)
    numbers = sorted(int(v) + 1 for v in rng.choice(total + total // 12 + 2, size=total, replace=False))
    order = rng.permutation(total)
    lists, start = {}, 0
    for split in ("train", "val", "test"):
        lists[split] = sorted(numbers[i] for i in order[start:start + sizes[split]])
        start += sizes[split]
    group_of = {pid: ("test" if s == "test" else "trainval") for s, ids in lists.items() for pid in ids}
    slots: Dict[Tuple[str, str], List[Tuple[int, int, str]]] = {key: [] for key in SYSU_IMAGES}
    for k, pid in enumerate(numbers):
        for cam in cameras_of_identity(R.rng_for(seed, "sysu", R.COVERAGE, k), spec.cameras):
            slots[(group_of[pid], cam.modality)].append((k, pid, cam.name))
    plan = []
    for key, pairs in slots.items():
        n = max(len(pairs), round(SYSU_IMAGES[key] * scale))
        base, extra = divmod(n, len(pairs))
        for j, (k, pid, cam) in enumerate(pairs):
            plan.extend((k, pid, cam, i) for i in range(1, base + (j < extra) + 1))
    return lists, sorted(plan, key=lambda t: (t[0], t[2], t[3]))


def write_sysu_tree(root: Path, scale: float, seed: int, image_size: Tuple[int, int]) -> int:
    """Render the SYSU-MM01 tree of :func:`sysu_plan` into ``root`` (replaced); returns the image count."""
    import math as m

    from pipeline.synth import randomness as R
    from pipeline.synth.background import sample_scene_style
    from pipeline.synth.crop import render_image, sample_placement
    from pipeline.synth.keypoints import KEYPOINTS_FILE, dumps, keypoints_document
    from pipeline.synth.output import encode_image, write_file
    from pipeline.synth.skeleton import sample_walking_pose
    from pipeline.synth.traits import sample_traits
    from vireid.data.scan_checks import SYNTH_MARKER
    from vireid.data.spec import load_spec

    spec = load_spec("sysu")
    lists, plan = sysu_plan(scale, seed)
    cams = {c.name: c for c in spec.cameras}
    styles = {c.name: sample_scene_style(R.rng_for(seed, "sysu", R.SCENE, c.index), c.indoor) for c in spec.cameras}
    yaw_mode = {c.name: (0.0, m.pi / 2, -m.pi / 2, 0.6, -0.6)[c.index % 5] for c in spec.cameras}
    n_ids = sum(len(v) for v in lists.values())
    traits = [sample_traits(R.rng_for(seed, "sysu", R.TRAITS, k), "dye") for k in range(n_ids)]
    h0, w0 = image_size
    keypoints = {}
    split_of = {pid: s for s, ids in lists.items() for pid in ids}
    counts = {s: {"rgb": 0, "ir": 0} for s in lists}
    for k, pid, cam_name, i in plan:
        cam = cams[cam_name]
        rng = R.rng_for(seed, "sysu", R.IMAGE, k, cam.index, i)
        h = int(round(h0 * rng.uniform(0.85, 1.2)))
        w = max(8, int(round(h * (w0 / h0) * rng.uniform(0.85, 1.15))))
        yaw = yaw_mode[cam_name] + (m.pi if rng.random() < 0.5 else 0.0) + rng.normal(0, 0.3)
        img, kp = render_image(rng, traits[k], styles[cam_name], cam.modality, (h, w),
                               sample_walking_pose(rng, yaw), sample_placement(rng, h, w, "full"))
        rel = f"{cam_name}/{pid:04d}/{i:04d}{spec.image_ext}"
        write_file(root / rel, encode_image(img, spec.image_ext))
        keypoints[rel] = kp
        counts[split_of[pid]][cam.modality] += 1
    for split, rel in spec.layout["id_lists"].items():
        write_file(root / rel, ",".join(str(pid) for pid in lists[split]) + "\n")
    write_file(root / KEYPOINTS_FILE, dumps(keypoints_document(keypoints)))
    tv = {mod: counts["train"][mod] + counts["val"][mod] for mod in ("rgb", "ir")}
    expected = {
        "identities": n_ids,
        "rgb_images": tv["rgb"] + counts["test"]["rgb"], "ir_images": tv["ir"] + counts["test"]["ir"],
        "splits": {"train+val": {"identities": len(lists["train"]) + len(lists["val"]),
                                 "rgb_images": tv["rgb"], "ir_images": tv["ir"]},
                   "test": {"identities": len(lists["test"]), "ir_images": counts["test"]["ir"]}},
    }
    marker = {"generator": "benchmarks/full_scale.py", "layout": "sysu", "seed": seed, "scale": scale,
              "expected": expected}
    write_file(root / SYNTH_MARKER, json.dumps(marker, indent=2, sort_keys=True) + "\n")
    return len(plan)


def write_regdb_tree(root: Path, scale: float, seed: int) -> int:
    """RegDB through ``vireid-prep synth`` itself (its layout already has the real per-id counts)."""
    from pipeline.synth import synthesize

    ids = max(2, 2 * round(REGDB_IDS * scale / 2))
    summary = synthesize("regdb", root, ids=ids, seed=seed, images_per_camera=REGDB_PER_MODALITY)
    return sum(summary.images.values())


# ----------------------------------------------------------------------------- measuring
def run_stage(cmd: Sequence[str], log_path: Path, env: Dict[str, str]) -> Tuple[float, float, float, int]:
    """Run ``cmd`` as a child process: ``(wall seconds, CPU seconds, peak RSS in bytes, exit status)``.

    The CPU seconds (user + system, of the child and the children it waited for) say what
    the stage cost when the machine is shared and the wall time is not its own.

    ``os.wait4`` returns the resource use of that child alone (and of the children it
    waited for, e.g. data-loader workers): RUSAGE_CHILDREN-style accounting per stage.
    """
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - start, cpu, usage.ru_maxrss * 1024.0, proc.returncode


def tree_bytes(path: Path, suffixes: Optional[Tuple[str, ...]] = None) -> int:
    """Bytes of the files under ``path`` (only those ending in ``suffixes`` when given)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            if suffixes is None or f.endswith(suffixes):
                total += os.path.getsize(os.path.join(dirpath, f))
    return total


def eval_images(cache: Path) -> int:
    """How many distinct test images the SYSU protocol (all + indoor, single shot, 10 trials) extracts."""
    from vireid.data.manifest import Manifest
    from vireid.engine.evaluate import sysu_sets

    manifest = Manifest.load(cache / "manifest.json")
    seen = set()
    for mode in ("all", "indoor"):
        seen.update(sysu_sets(manifest, mode, "single", trials=list(range(10))).paths())
    return len(seen)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


# ----------------------------------------------------------------------------- main
def parse(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="working folder (emptied first)")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the real identities / images")
    ap.add_argument("--quick", action="store_true", help="3 training steps instead of 20")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default 20, --quick 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--image-size", default="256x128", help="base HxW of the rendered SYSU crops (vary +-20%%)")
    ap.add_argument("--input-size", default="288x144", help="cache / training input HxW (the paper's 288x144)")
    ap.add_argument("--image-format", default="raw", choices=("raw", "jpeg"), help="heatmap cache format")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="decoding threads of manifest / heatmaps (default: this machine's cores)")
    ap.add_argument("--train-set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra vireid-train override (tests shrink the model with these)")
    ap.add_argument("--eval-batch-size", type=int, default=64)
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of the stages")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--stage", help=argparse.SUPPRESS)     # internal: run one synth stage in this process
    args = ap.parse_args(argv)
    if not 0 < args.scale <= 1:
        ap.error(f"--scale must be in (0, 1], got {args.scale}")
    unknown = set(args.stages.split(",")) - set(STAGES)
    if unknown:
        ap.error(f"--stages: unknown {sorted(unknown)}; choose from {', '.join(STAGES)}")
    return args


def size_arg(text: str) -> Tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse(argv)
    work: Path = args.work
    if args.stage:                                       # child: one synth stage
        if args.stage == "synth-sysu":
            n = write_sysu_tree(work / "SYSU-MM01", args.scale, args.seed, size_arg(args.image_size))
        else:
            n = write_regdb_tree(work / "RegDB", args.scale, args.seed)
        (work / f"{args.stage}.count").write_text(str(n))
        return 0

    steps = args.steps or (3 if args.quick else 20)
    if work.exists():
        shutil.rmtree(work)
    (work / "logs").mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    py = sys.executable
    prep = [py, "-m", "pipeline.cli"]
    sysu, regdb = work / "SYSU-MM01", work / "RegDB"
    caches = {"sysu": work / "cache-sysu", "regdb": work / "cache-regdb"}
    me = [py, str(Path(__file__).resolve()), "--work", str(work), "--scale", str(args.scale), "--seed",
          str(args.seed), "--image-size", args.image_size]
    h, w = size_arg(args.input_size)
    # the rehearsal's cache holds the synthetic people's exact keypoints, not a LIP estimator's
    # activation checkpointing: batch 64 at 288x144 keeps 11.3 GiB of activations on a CPU without it
    train_sets = ["model.pretrained=null", "model.pose_init=null", "data.require_estimator=null", "epochs=1",
                  "speed.activation_checkpointing=true",
                  f"data.batches_per_epoch={steps}", f"data.input_size=[{h}, {w}]", "device=cpu", *args.train_set]
    commands = {
        "synth-sysu": me + ["--stage", "synth-sysu"],
        "synth-regdb": me + ["--stage", "synth-regdb"],
        "manifest-sysu": prep + ["manifest", "--dataset", "sysu", "--root", str(sysu), "--out",
                                 str(work / "sysu.manifest.json"), "--jobs", str(args.jobs), "--no-progress"],
        "manifest-regdb": prep + ["manifest", "--dataset", "regdb", "--root", str(regdb), "--out",
                                  str(work / "regdb.manifest.json"), "--jobs", str(args.jobs), "--no-progress"],
        "train-sysu": [py, "-m", "vireid.cli.train", "--config", str(REPO / "configs" / "sysu.yaml"),
                       "--cache", str(caches["sysu"]), "--out", str(work / "run"), "--no-progress"]
                      + [a for s in train_sets for a in ("--set", s)],
        "eval-sysu": [py, "-m", "vireid.cli.evaluate", "--checkpoint", str(work / "run" / "last.pt"), "--cache",
                      str(caches["sysu"]), "--out", str(work / "eval"), "--batch-size", str(args.eval_batch_size),
                      "--no-progress"],
    }
    for ds, root in (("sysu", sysu), ("regdb", regdb)):
        commands[f"heatmaps-{ds}"] = prep + [
            "heatmaps", "--dataset", ds, "--root", str(root), "--out", str(caches[ds]),
            "--manifest", str(work / f"{ds}.manifest.json"), "--estimator", "keypoints",
            "--input-size", args.input_size, "--image-format", args.image_format, "--jobs", str(args.jobs),
            "--no-progress"]
        commands[f"verify-{ds}"] = prep + ["verify", str(caches[ds])]
    outputs = {"synth-sysu": sysu, "synth-regdb": regdb, "manifest-sysu": work / "sysu.manifest.json",
               "manifest-regdb": work / "regdb.manifest.json", "heatmaps-sysu": caches["sysu"],
               "heatmaps-regdb": caches["regdb"], "train-sysu": work / "run", "eval-sysu": work / "eval"}

    print(f"full-size rehearsal: scale {args.scale}, {steps} training steps, work {work}, python {py}", flush=True)
    rows, images = [], {}
    failed = None
    wanted = [s for s in STAGES if s in args.stages.split(",")]
    for stage in wanted:
        wall, cpu, rss, rc = run_stage(commands[stage], work / "logs" / f"{stage}.log", env)
        ds = stage.split("-")[1]
        if stage.startswith("synth") and rc == 0:
            images[ds] = int((work / f"{stage}.count").read_text())
        if stage == "train-sysu":
            n = steps * _batch_images(args.train_set)
        elif stage == "eval-sysu":
            n = eval_images(caches["sysu"]) if rc == 0 else 0
        else:
            n = images.get(ds, 0)
        out = outputs.get(stage)
        written = tree_bytes(out) if out is not None and out.exists() else 0
        rows.append((stage, wall, cpu, n / wall if wall > 0 else 0.0, rss, written, rc))
        print(f"  {stage:15s} {wall:8.1f} s  CPU {cpu:8.1f} s  {n / wall:8.1f} img/s  peak RSS {human(rss):>10s}  "
              f"written {human(written):>10s}  exit {rc}", flush=True)
        if rc != 0:
            failed = stage
            print(f"stage {stage} failed (exit {rc}); its log: {work / 'logs' / (stage + '.log')}", flush=True)
            print((work / "logs" / f"{stage}.log").read_text()[-3000:], flush=True)
            break
    print_table(rows, work, caches, images, steps, args)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def _batch_images(sets: Sequence[str]) -> int:
    """Images per training step: 2 x D x K of configs/sysu.yaml, after the overrides."""
    d, k = 8, 4
    for s in sets:
        key, _, value = s.partition("=")
        if key == "data.num_ids":
            d = int(value)
        elif key == "data.num_per_modality":
            k = int(value)
    return 2 * d * k


def print_table(rows, work: Path, caches: Dict[str, Path], images: Dict[str, int], steps: int,
                args: argparse.Namespace) -> None:
    print("\n| stage | wall (s) | CPU (s) | images/s | peak RSS | written |")
    print("|:---|---:|---:|---:|---:|---:|")
    for stage, wall, cpu, rate, rss, written, rc in rows:
        flag = "" if rc == 0 else f" (exit {rc})"
        print(f"| {stage}{flag} | {wall:.1f} | {cpu:.1f} | {rate:.1f} | {human(rss)} | {human(written)} |")
    over = [r[0] for r in rows if r[4] > 8 * GIB]
    print(f"\nstages over 8 GiB peak RSS: {', '.join(over) if over else 'none'}; "
          f"total wall {sum(r[1] for r in rows) / 60:.1f} min, CPU {sum(r[2] for r in rows) / 60:.1f} min "
          f"on {os.cpu_count()} cores")
    for ds, root in (("sysu", work / "SYSU-MM01"), ("regdb", work / "RegDB")):
        cache = caches[ds]
        if root.exists() and cache.exists():
            raw = tree_bytes(root, (".jpg", ".bmp"))
            size = tree_bytes(cache)
            print(f"{ds}: cache {human(size)} for {images.get(ds, 0)} images = {size / max(raw, 1):.2f}x the raw "
                  f"images' {human(raw)} ({args.image_format} cache format)")
    log = work / "run" / "log.jsonl"
    if log.exists():
        recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        rates = [r["images_per_s"] for r in recs if r.get("kind") == "step"][1:]
        if rates:
            print(f"train-sysu: {sorted(rates)[len(rates) // 2]:.2f} images/s per step (median after the first)")
    epoch_images = math.ceil(SYSU_IMAGES[("trainval", "rgb")] * args.scale / 32) * 64
    need = TARGET_EPOCHS * epoch_images / (TARGET_HOURS * 3600)
    print(f"a {TARGET_EPOCHS}-epoch run ({epoch_images} images per epoch at batch 64) must sustain "
          f"{need:.1f} training images/s to finish in {TARGET_HOURS:.0f} hours")


if __name__ == "__main__":
    sys.exit(main())
