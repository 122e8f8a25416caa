"""The paper's Table IV on one heatmap cache: Baseline, + PEB, + PEB + L_pose and the
full model, trained with the same seed and budget (one base configuration; the rows'
``configs/ablation_*.yaml`` switch only the components), each evaluated with the test
protocol, plus the full model untrained (random weights) as a reference row.

    python benchmarks/ablation.py --cache demo_out/cache/sysu-keypoints --out demo_out/ablation            # demo budget
    python benchmarks/ablation.py --base configs/sysu.yaml --cache cache/sysu --out runs/ablation \\
        --set device=cuda --set model.pose_init=lip_gccpm.pth                                      # the paper's

Writes OUT/<row>/ (each run, resumable: rerunning reuses finished rows), OUT/<row>/eval/
results.json, OUT/ablation.json and OUT/ablation.md, and prints the table.

With ``--sweep KEY --values V1,V2,...`` it runs the paper's Fig. 5 instead: the base
configuration (the full model) once per value of one key, everything else fixed, into
OUT/<key=value>/, OUT/sweep.json, OUT/sweep.md and OUT/sweep.png (validation mAP on the
held-out identities against the epoch, one line per value):

    python benchmarks/ablation.py --cache demo_out/cache/sysu-keypoints --out demo_out/sweep \
        --sweep loss.lambda_pose --values 0,1,5,10 --set epochs=20

With ``--seeds 3`` (or ``--seeds 0,1,2``) every row is trained once per seed into
OUT/seed<S>/ and OUT/ablation_seeds.json / .md give mean +- sample std of R1 / mAP for f_ID
and f_ALL, and how far each row's f_ALL mAP lies from the baseline's in pooled sd;
OUT/ablation_seeds.png draws each row's validation mAP against the epoch (mean and a +- sd
band over the seeds). ``--rows baseline,full`` trains only those rows (names: baseline, peb,
peb_pose, full):

    python benchmarks/ablation.py --cache cache_rir --out abl_rir --seeds 3 --rows baseline,full \\
        --set epochs=240 --set optim.step_size=176 --set val_every=20

Rows trained separately into one OUT (other rows, other seeds, two runs at a time) are put in
one table by ``--table-only``: it trains and evaluates nothing, gathers every run of --seeds
and --rows already evaluated in OUT, and refuses runs of different budgets or data; a row
with fewer seeds names its seeds:

    python benchmarks/ablation.py --out abl_rir --seeds 3 --table-only
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vireid.experiments.ablation import ROWS, run_ablation, select_rows  # noqa: E402
from vireid.experiments.ablation_seeds import (finished_runs, parse_seeds, run_ablation_seeds,  # noqa: E402
                                               write_seeds_table)
from vireid.evaluation.testing import EvalError, EvalOptions  # noqa: E402
from vireid.engine.loop import resolve_device  # noqa: E402
from vireid.experiments.sweep import parse_values, run_sweep  # noqa: E402
from vireid.engine.trainer import USER_ERRORS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, default=ROOT / "configs" / "demo.yaml",
                    help="base configuration: budget, seed, input, batch (default configs/demo.yaml)")
    ap.add_argument("--configs", type=Path, default=ROOT / "configs",
                    help="folder of the ablation_*.yaml row presets")
    ap.add_argument("--cache", type=Path, default=None, help="heatmap cache (vireid-prep heatmaps); required unless "
                                                              "--table-only")
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override for every row (repeatable), e.g. --set epochs=4")
    ap.add_argument("--trials", type=int, default=None, help="SYSU-MM01 gallery trials (default 10)")
    ap.add_argument("--device", default="auto", help="evaluation device: auto (CUDA when there is one), cpu, cuda or "
                                                     "cuda:N (training: the configuration's device)")
    ap.add_argument("--no-untrained", action="store_true", help="skip the untrained reference row")
    ap.add_argument("--sweep", metavar="KEY", default=None,
                    help="Fig. 5 instead of Table IV: train the base config once per --values of KEY, e.g. "
                         "loss.lambda_pose")
    ap.add_argument("--values", default=None, help="with --sweep: comma-separated values, e.g. 0,1,5,10")
    ap.add_argument("--seeds", default=None,
                    help="Table IV with error bars: a count (3: seeds 0, 1, 2) or a list (0,5,7) of seeds")
    ap.add_argument("--rows", default=None,
                    help="Table IV's rows to train, comma-separated from baseline, peb, peb_pose, full (default all)")
    ap.add_argument("--table-only", action="store_true",
                    help="with --seeds: train and evaluate nothing, write the table of the runs already evaluated in "
                         "OUT (a run a seed has not finished is left out; rows with fewer seeds name them)")
    args = ap.parse_args(argv)
    if (args.sweep is None) != (args.values is None):
        ap.error("--sweep and --values go together")
    if args.sweep is not None and (args.seeds is not None or args.rows is not None):
        ap.error("--seeds and --rows apply to the Table IV rows, not to --sweep")
    if args.table_only and args.seeds is None:
        ap.error("--table-only needs --seeds: the seeds whose runs the table gathers")
    if args.table_only and (args.sets or args.cache is not None):
        ap.error("--table-only trains and evaluates nothing: --set and --cache do not apply (the runs in OUT "
                 "say theirs)")
    if args.cache is None and not args.table_only:
        ap.error("the following arguments are required: --cache")
    try:
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
        rows = select_rows(args.rows) if args.rows is not None else ROWS
    except ValueError as exc:
        ap.error(str(exc))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("vireid").setLevel(logging.INFO)
    try:
        if args.table_only:                     # evaluates nothing: no device to resolve
            result = write_seeds_table(args.out, finished_runs(args.out, seeds, rows), rows, {"table_only": True})
        else:
            options = EvalOptions(mode="all", direction="v2t", trials=args.trials,
                                  device=str(resolve_device(args.device)))
            if seeds is not None:
                result = run_ablation_seeds(args.base, args.cache, args.out, seeds, overrides=args.sets,
                                            configs_dir=args.configs, options=options,
                                            untrained_reference=not args.no_untrained, rows=rows)
            elif args.sweep is not None:
                result = run_sweep(args.base, args.cache, args.out, args.sweep, parse_values(args.values),
                                   overrides=args.sets, options=options, untrained_reference=not args.no_untrained)
            else:
                result = run_ablation(args.base, args.cache, args.out, overrides=args.sets,
                                      configs_dir=args.configs, options=options,
                                      untrained_reference=not args.no_untrained, rows=rows)
    except USER_ERRORS + (EvalError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.markdown)
    print(f"table: {result.md_path}, {result.json_path}"
          + (f", {result.png_path}" if getattr(result, "png_path", None) else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
