"""Which reading of eq. 16 gives the pose term real weight: per-term gradient shares on the
shared layers (issue 15), measured by short training runs that differ only in the reading.

Each reading is a set of overrides on one base configuration (default configs/demo.yaml);
every run trains ``--steps`` steps with the same seed and data and measures, every
``--grad-every`` steps, each weighted loss term's gradient norm on the modality-shared
module (layer2) and on the pose branch's Conv1 (``vireid.engine.grad_share``). The table
gives the mean share of each term over the measured steps, the pose term's weighted value
(lambda * L_pose) and whether the run stayed finite.

    python benchmarks/pose_share.py --cache demo_out/cache/sysu-keypoints --out /tmp/pose_share
    python benchmarks/pose_share.py --cache ... --out ... --reading "sum16=loss.pose_normalization=sum,model.heatmap_channels=16"

Writes OUT/<reading>/ (each run) and OUT/pose_share.json / .md, and prints the table.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vireid.engine.config import load_config  # noqa: E402
from vireid.losses.total import TERMS  # noqa: E402
from vireid.engine.runlog import read_log  # noqa: E402
from vireid.engine.trainer import USER_ERRORS, train  # noqa: E402
from vireid.io import atomic_write_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: name -> overrides: the readings of eq. 16 compared by default
READINGS: Dict[str, Tuple[str, ...]] = {
    "mean, 1 merged map": ("loss.pose_normalization=mean", "model.heatmap_channels=1"),
    "mean, 16 joint maps": ("loss.pose_normalization=mean", "model.heatmap_channels=16"),
    "sum, 1 merged map": ("loss.pose_normalization=sum", "model.heatmap_channels=1"),
    "sum, 16 joint maps": ("loss.pose_normalization=sum", "model.heatmap_channels=16"),
}
BLOCKS = ("modality_shared", "pose_conv1")


def parse_reading(text: str) -> Tuple[str, Tuple[str, ...]]:
    """``'name=k1=v1,k2=v2'`` -> ``('name', ('k1=v1', 'k2=v2'))``."""
    name, _, rest = text.partition("=")
    if not name or not rest:
        raise ValueError(f"--reading must be NAME=KEY=VALUE[,KEY=VALUE...], got {text!r}")
    return name, tuple(s for s in rest.split(",") if s)


def summarise(records: Sequence[Dict[str, Any]], skip: int = 0) -> Dict[str, Any]:
    """Mean share per block and term over the ``grad`` records after the first ``skip`` ones,
    the mean weighted pose term of the ``step`` records, and whether every value was finite."""
    grads = [r for r in records if r.get("kind") == "grad"][skip:]
    steps = [r for r in records if r.get("kind") == "step"]
    out: Dict[str, Any] = {"measured_steps": [int(r["step"]) for r in grads]}
    for block in BLOCKS:
        for term in TERMS:
            vals = [float(r[f"{block}/{term}_share"]) for r in grads if f"{block}/{term}_share" in r]
            out[f"{block}/{term}"] = sum(vals) / len(vals) if vals else None
    pose = [float(r["pose"]) for r in steps if "pose" in r]
    total = [float(r["total"]) for r in steps if "total" in r]
    out["pose_first"], out["pose_last"] = (pose[0], pose[-1]) if pose else (None, None)
    out["total_last"] = total[-1] if total else None
    out["finite"] = all(math.isfinite(v) for v in pose + total)
    return out


def table(rows: Dict[str, Dict[str, Any]], lam: float) -> str:
    def pct(v: Optional[float]) -> str:
        return "-" if v is None else f"{100 * v:.0f}%"

    terms = list(TERMS)
    head = (["reading"] + [f"layer2 {t}" for t in terms] + [f"Conv1 {t}" for t in terms]
            + ["L_pose first -> last", "finite"])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join([":---"] + ["---:"] * (len(head) - 1)) + "|"]
    for name, r in rows.items():
        pose = "-" if r["pose_first"] is None else f"{r['pose_first']:.4g} -> {r['pose_last']:.4g}"
        lines.append("| " + " | ".join([name] + [pct(r[f"modality_shared/{t}"]) for t in terms]
                                      + [pct(r[f"pose_conv1/{t}"]) for t in terms]
                                      + [pose, "yes" if r["finite"] else "NO"]) + " |")
    return (f"Mean share of each weighted term's gradient norm (lambda = {lam:g}) on layer2 "
            "(modality-shared) and on the pose branch's Conv1:\n\n" + "\n".join(lines) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, default=ROOT / "configs" / "demo.yaml")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=40, help="training steps per reading (default 40)")
    ap.add_argument("--grad-every", type=int, default=5)
    ap.add_argument("--skip", type=int, default=1, help="measured steps left out at the start (default 1)")
    ap.add_argument("--reading", action="append", default=[], metavar="NAME=K=V[,K=V]",
                    help="a reading to compare (repeatable); default: mean/sum x 1/16 maps")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override for every run, e.g. --set model.init=xavier")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    readings = dict(parse_reading(r) for r in args.reading) if args.reading else READINGS
    rows: Dict[str, Dict[str, Any]] = {}
    lam = None
    for name, overrides in readings.items():
        slug = "".join(c if c.isalnum() else "_" for c in name)
        reading = list(overrides) + list(args.sets)
        epochs = max(1, math.ceil(args.steps / load_config(args.base, reading).data.batches_per_epoch))
        sets = reading + [f"epochs={epochs}", f"grad_every={args.grad_every}", f"val_every={epochs + 1}",
                          "log_every=1"]
        cfg = load_config(args.base, sets)
        lam = cfg.loss.lambda_pose
        rows[name] = {"overrides": sets}
        try:
            train(cfg, args.cache, args.out / slug, resume="auto")
        except USER_ERRORS as exc:                     # a diverged reading is a finding: keep its records
            print(f"error: {name}: {exc}", file=sys.stderr)
            rows[name]["error"] = str(exc)
        rows[name].update(summarise(read_log(args.out / slug / "log.jsonl"), args.skip))
    md = table(rows, lam if lam is not None else float("nan"))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "pose_share.md", md)
    atomic_write_text(args.out / "pose_share.json", json.dumps(rows, indent=2) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
