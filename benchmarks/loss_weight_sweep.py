"""The paper's Fig. 5 on one heatmap cache: one key (a loss weight such as
``loss.lambda_pose``, or any other, e.g. ``loss.pose_normalization``) swept over values with
everything else fixed, each run trained with the same seed and budget and evaluated with
the test protocol; validation mAP against the epoch for each value in ``OUT/sweep.png``.

    python benchmarks/loss_weight_sweep.py --cache demo_out/cache/sysu --out demo_out/sweep \\
        --key loss.lambda_pose --values 0,1,5,10                                      # demo budget
    python benchmarks/loss_weight_sweep.py --base configs/regdb.yaml --cache cache/regdb --out runs/fig5 \\
        --key loss.lambda_pose --values 1,3,5,7,9 --set device=cuda --set model.pose_init=lip_gccpm.pth

Writes OUT/<key=value>/ (each run, resumable), OUT/sweep.json, OUT/sweep.md, OUT/sweep.png,
and prints the table.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vireid.engine.evaluate import EvalError, EvalOptions  # noqa: E402
from vireid.engine.sweep import parse_values, run_sweep  # noqa: E402
from vireid.engine.trainer import USER_ERRORS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, default=ROOT / "configs" / "demo.yaml",
                    help="base configuration (default configs/demo.yaml)")
    ap.add_argument("--cache", type=Path, required=True, help="heatmap cache (vireid-prep heatmaps)")
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--key", default="loss.lambda_pose", help="the configuration key swept (default loss.lambda_pose)")
    ap.add_argument("--values", required=True, help="comma-separated values, e.g. 0,1,5,10")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override for every run (repeatable), e.g. --set epochs=20")
    ap.add_argument("--trials", type=int, default=None, help="SYSU-MM01 gallery trials (default 10)")
    ap.add_argument("--device", default="cpu", help="evaluation device")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("vireid").setLevel(logging.INFO)
    try:
        result = run_sweep(args.base, args.cache, args.out, args.key, parse_values(args.values), overrides=args.sets,
                           options=EvalOptions(mode="all", direction="v2t", trials=args.trials, device=args.device))
    except USER_ERRORS + (EvalError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.markdown)
    print(f"table: {result.md_path}, {result.json_path}; curves: {args.out / 'sweep.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
