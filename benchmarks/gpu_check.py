"""Every GPU path of vireid measured by one command (docs/gpu.md): one table printed, the same as JSON.

    python benchmarks/gpu_check.py [--device auto|cuda|cpu] [--quick] [--out gpu_check.json]
        [--only train,loader,heatmaps,eval,ddp] [--budget-s 480] [--workers 4 8] [--ddp-procs N]

A driver over the benchmarks' functions on a synthetic SYSU-MM01 cache (``bench_train.make_sysu_cache``:
no weights, nothing downloaded): train = the trainer's profile (``vireid-train --profile``) at the paper's
setting per speed mode of :data:`MODES` against float32, and the default mode with ``grad_every=1``
against it without; loader = ``bench_train.loader_rate`` against the model; heatmaps =
``bench_heatmaps.estimator_rates`` per batch size; eval = feature extraction and
``bench_eval_metrics.time_trial``; ddp = the trainer under ``torchrun`` (with one GPU a one-process
NCCL group made here, so DDP still runs). Every figure is measured in this run or is a ratio of two
that are. What the host lacks gives a ``skipped`` row, a failing check a ``failed`` row (exit status
1) and the rest goes on; on CUDA each check runs in a process of its own with a time limit.
``--device cpu --quick``: a tiny model on a CPU in a minute (tests/benchmarks/test_gpu_check.py).
"""
from __future__ import annotations

import argparse, json, math, os, platform, signal, subprocess, sys, tempfile, time  # noqa: E401
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]             # the sibling benchmarks and the repo's packages

import torch  # noqa: E402

SECTIONS = ("train", "loader", "heatmaps", "eval", "ddp")
#: training modes: name -> (speed.amp, speed.channels_last, speed.compile)
MODES = {"float32": (False, False, False), "bf16": ("bf16", False, False), "fp16": ("fp16", False, False),
         "float32 + channels_last": (False, True, False), "bf16 + channels_last": ("bf16", True, False),
         "fp16 + channels_last": ("fp16", True, False), "bf16 + channels_last + compile": ("bf16", True, True)}
GRAD_SHARE, TAG = " + grad_every=1", "GPU_CHECK_ROWS "
ONE_RANK = ("world size 1: checks that the DDP path runs and its overhead; cannot check SyncBatchNorm "
            "(falls back to BatchNorm), the hetero-center gather (a no-op) or traffic between GPUs")
#: --quick (a CPU in a minute: ResNet-18 at 96x48, 2 ids x 2 + 2, a 1-stage GCCPM at 64) and a GPU host
SIZES = {True: dict(ids=8, per_camera=1, source=None, hw=[96, 48], steps=2, warmup=1, workers=[2], batches=6,
                    heat=[8], stages=1, heat_size=64, eval_batch=16, shots=["single"], limit=240, budget=600,
                    model=["model.backbone=resnet18", "model.stripe_dim=32", "model.teacher_dim=64",
                           "model.pose_channels=64", "model.deconv_channels=32", "model.refine_channels=32",
                           "data.num_ids=2", "data.num_per_modality=2"]),
         False: dict(ids=96, per_camera=2, source=[256, 128], hw=[288, 144], steps=20, warmup=2, workers=[4, 8],
                     batches=40, heat=[16, 32, 64, 128], stages=5, heat_size=256, eval_batch=64,
                     shots=["single", "multi"], limit=150, budget=480, model=[])}


def row(section: str, check: str, status: str = "ok", reason: str = "", details: str = "", **figures) -> dict:
    return dict(section=section, check=check, status=status, reason=reason, figures=figures, result="", ratio="",
                details=details)


def failed(spec: dict, why: Any) -> List[dict]:
    text = f"{type(why).__name__}: {' '.join(str(why).split())[:300]}" if isinstance(why, BaseException) else why
    return [row(spec["section"], spec["name"], "failed", text)]


def has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton as has
        return bool(has())
    except Exception:  # noqa: BLE001 - an old or stripped torch
        return False


def bf16_native() -> bool:
    from vireid.engine.speed import cuda_bf16_native     # speed.amp auto's rule: emulated bf16 does not count
    return cuda_bf16_native()


def mode_skip_reason(mode, device: str) -> Optional[str]:
    if device != "cuda":
        return "needs CUDA (this run is on the CPU)" if any(mode) else None
    if mode[0] == "bf16" and not bf16_native():
        return f"this GPU has no bfloat16 (compute capability {'.'.join(map(str, torch.cuda.get_device_capability()))})"
    return "torch.compile on CUDA needs triton, which this torch installation lacks" if mode[2] and not has_triton() \
        else None


def default_mode(device: str) -> str:
    """The mode of ``speed: auto``, what vireid-train uses by default."""
    return "float32" if device != "cuda" else "bf16 + channels_last" if bf16_native() else "fp16 + channels_last"


def ddp_skip_reason(device: str) -> Optional[str]:
    backend = "NCCL" if device == "cuda" else "gloo"
    dist = torch.distributed
    return None if dist.is_available() and getattr(dist, f"is_{backend.lower()}_available")() \
        else f"this torch build has no {backend}"


# ----------------------------------------------------------------------------- the checks
def config(overrides: List[str]):
    from vireid.engine.config import load_config
    return load_config(HERE.parent / "configs" / "sysu.yaml", overrides)


def job_train(s: dict) -> List[dict]:
    """A training mode through the trainer; under torchrun (``s['ddp']``) rank 0 reports the ddp row."""
    import torch.distributed as dist
    from vireid.engine.profile import profile_training

    world, overrides, own = int(os.environ.get("WORLD_SIZE", "1")), list(s["overrides"]), False
    if s.get("ddp") and world == 1:                      # NCCL refuses two ranks on one GPU: a group of our own
        overrides += ["device=cuda:0"] if s["device"] == "cuda" else []
        dist.init_process_group("nccl" if s["device"] == "cuda" else "gloo", init_method="env://", rank=0,
                                world_size=1)
        own = True
    try:
        rep = profile_training(config(overrides), s["cache"], s["steps"], warmup=s["warmup"])
    finally:
        if own:
            dist.destroy_process_group()
    d = rep.to_dict()
    r = row("train", s["name"], loss_total=d["loss_values"]["total"], **{k: d[k] for k in (
        "images_per_s", "compute_images_per_s", "peak_memory_mib", "data_wait_share", "warmup_s", "step_s")},
        details=f"{d['speed']}; without data wait {d['compute_images_per_s']:.1f} img/s; peak "
                f"{d['peak_memory_mib']:.0f} MiB ({d['memory_kind']}); data wait {100 * d['data_wait_share']:.1f}%")
    if s.get("ddp"):
        r.update(section="ddp", check=f"torchrun {world} process(es), {rep.backend or 'no process group'}")
        r["figures"]["processes"] = world
        r["details"] += f"; {d['images_per_step']:.0f} images per global step" + (f"; {ONE_RANK}" if world == 1 else "")
    else:
        r["details"] += f"; warm-up {d['warmup_s']:.1f} s"
    if s.get("ddp") and rep.backend is None or not rep.losses_finite:
        r.update(status="failed", reason=f"non-finite loss: {d['loss_values']}" if not rep.losses_finite else
                 "no process group: the trainer did not run DDP")
    return [r] if int(os.environ.get("RANK", "0")) == 0 else []


def job_loader(s: dict) -> List[dict]:
    from bench_train import loader_rate

    trained = s.get("reuse") or job_train(s)[0]["figures"]
    alone = loader_rate(Path(s["cache"]), config(s["overrides"]), s["workers"], s["batches"], torch.device(s["device"]))
    model = trained["compute_images_per_s"]
    return [row("loader", s["name"], data_wait_share=trained["data_wait_share"], loader_over_model=alone / model,
                details=f"training {trained['images_per_s']:.1f} img/s, {model:.1f} without the wait"
                        f"{' (the train row above)' if s.get('reuse') else ''}; loader alone {alone:.1f} img/s")]


def job_heatmaps(s: dict) -> List[dict]:
    from bench_heatmaps import estimator_rates, random_gccpm
    from vireid.data.scan import scan

    torch.manual_seed(0)
    tmp, tree = Path(s["tmp"]), Path(s["tree"])
    manifest, weights, rows = scan("sysu", tree), random_gccpm(tmp / "gccpm.pth", s["stages"]), []
    for batch in s["batches"]:
        try:
            r = estimator_rates(manifest, tree, tmp / f"heat{batch}", weights, batch, s["device"], s["jobs"], s["size"])
            rows.append(row("heatmaps", f"batch {batch}", job_images_per_s=r["job_ips"], ratio=r["ratio"],
                            forward_images_per_s=r["forward_ips"], batch=batch,
                            details=f"forward alone {r['forward_ips']:.1f} img/s; {r['images']} images, GCCPM "
                                    f"{s['stages']} stages at {r['estimator_size']}, {s['jobs']} decoding threads"))
        except Exception as exc:  # noqa: BLE001 - one batch size failing (out of memory) is a row
            rows += failed({"section": "heatmaps", "name": f"batch {batch}"}, exc)
    best = max((r["figures"] for r in rows if r["status"] == "ok"), key=lambda f: f["job_images_per_s"], default=None)
    return rows + ([row("heatmaps", "best batch", **best, details="the batch size with the highest end-to-end "
                        f"images/s (target ratio >= 0.85: {'met' if best['ratio'] >= 0.85 else 'not met'})")]
                   if best else [])


def job_eval(s: dict) -> List[dict]:
    """``vireid-eval``'s feature extraction (random weights), or the metrics of ``s['shot']`` against the loop."""
    if "shot" in s:
        from bench_eval_metrics import NUM_QUERIES, time_trial
        loop_s, fast, gallery, _ = time_trial(0, s["shot"], 1, [1])     # raises unless the numbers are identical
        return [row("eval", s["name"], seconds=fast[1], speedup=loop_s / fast[1], details=f"{NUM_QUERIES} queries x "
                    f"{gallery} gallery images, 1 trial, 1 thread; loop {loop_s:.3f} s; identical numbers")]
    from vireid.data.shards import HeatmapCache
    from vireid.engine.features import extract_features
    from vireid.model import PoseVIReIDNet

    cache, cfg, batch = HeatmapCache(s["cache"]), config(s["overrides"]), s["batch"]
    torch.manual_seed(0)
    model, n = PoseVIReIDNet(cfg.model_config(num_classes=s["classes"])), len(cache)
    extract_features(model, cache, range(batch), batch_size=batch, device=s["device"])       # warm-up
    t0 = time.perf_counter()
    feats = extract_features(model, cache, range(n), batch_size=batch, device=s["device"])
    r = row("eval", s["name"], images_per_s=n / (time.perf_counter() - t0), images=n, details=f"{n} images, "
            f"batch {batch}, {cfg.model.backbone} at {'x'.join(map(str, cfg.data.input_size))}, random weights")
    finite = all(bool(torch.isfinite(torch.from_numpy(v)).all()) for v in feats.values())
    return [r] if finite else failed(s, "non-finite features")


JOBS = {"train": job_train, "ddp": job_train, "loader": job_loader, "heatmaps": job_heatmaps, "eval": job_eval}


def run_job(kind: str, spec: dict, isolate: bool, timeout: float, log: Path) -> List[dict]:
    """A check here, or (``isolate``; ddp: under torchrun) in a session of its own that gets SIGKILL with its
    group after ``timeout`` s; its rows, or one failed row with the end of its output."""
    if not isolate and kind != "ddp":
        try:
            return JOBS[kind](spec)
        except Exception as exc:  # noqa: BLE001 - a failing check is a row, the rest goes on
            return failed(spec, exc)
    pre = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={spec['procs']}"] if kind == "ddp" else []
    cmd = [sys.executable, *pre, str(Path(__file__).resolve()), "--_worker", json.dumps([kind, spec, timeout + 5])]
    return run_child(cmd, timeout, log, spec)


def run_child(cmd: List[str], timeout: float, log: Path, spec: dict) -> List[dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    with open(log, "w") as out:                          # a file, not a pipe: a straggler cannot block the read
        proc = subprocess.Popen(cmd, cwd=HERE.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return failed(spec, f"did not finish within {timeout:.0f} s (time limit of the check)")
    lines = log.read_text(errors="replace").strip().splitlines()
    rows = [json.loads(line[len(TAG):]) for line in lines if line.startswith(TAG)]
    return rows[-1] if rows else failed(spec, f"exit status {proc.returncode}: "
                                              f"{' | '.join(x.strip() for x in lines[-3:])[-400:]}")


def worker_main(kind: str, spec: dict, deadline_s: float) -> None:
    """``--_worker JSON``: one check, its rows printed on one tagged line (by rank 0 under torchrun)."""
    signal.alarm(max(1, math.ceil(deadline_s)))          # ends this process even if its parent cannot
    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    try:
        rows = JOBS[kind](spec)
    except Exception as exc:  # noqa: BLE001
        rows = failed(spec, exc)
    if int(os.environ.get("RANK", "0")) == 0:
        print(TAG + json.dumps(rows), flush=True)


# ----------------------------------------------------------------------------- the whole check
def run_checks(device: str, quick: bool, sections, workers: List[int], budget: float, procs: int, tmp: Path,
               log) -> List[dict]:
    from bench_train import make_sysu_cache
    from vireid.data.manifest import Manifest

    z, start, rows = SIZES[quick], time.perf_counter(), []
    jobs = 2 if quick else max(2, min(8, (os.cpu_count() or 2) // 2))
    tree, cache = make_sysu_cache(tmp, z["ids"], tuple(z["hw"]), z["per_camera"], jobs=jobs,
                                  image_size=tuple(z["source"]) if z["source"] else None)
    log(f"synthetic SYSU-MM01 ({z['ids']} ids) and its cache: {time.perf_counter() - start:.1f} s")
    dmode, limit = default_mode(device), z["limit"]
    common = {"cache": str(cache), "steps": z["steps"], "warmup": z["warmup"], "device": device,
              "threads": 1 if quick else None}        # one thread: two on a busy small CPU ran 2.5x-4x slower

    def overrides(mode: str = dmode, *extra: str) -> List[str]:
        amp, channels_last, compiled = (str(v).lower() for v in MODES[mode])
        # random weights (no ImageNet, no LIP checkpoint); the cache holds exact keypoints, which the preset refuses
        return ["model.pretrained=null", "model.pose_init=null", "data.require_estimator=null", "progress=false",
                "log_every=100000", "grad_every=0", f"device={device}", f"data.workers={max(workers)}",
                f"data.input_size=[{z['hw'][0]}, {z['hw'][1]}]", f"speed.amp={amp}",
                f"speed.channels_last={channels_last}", f"speed.compile={compiled}", *z["model"], *extra]

    def run(kind: str, spec: dict, check: str, seconds: float = limit) -> None:
        left, t = budget - (time.perf_counter() - start), time.perf_counter()
        spec = {**common, **spec, "name": check}
        got = [row(spec["section"], check, "skipped", f"time budget of {budget:.0f} s spent (--budget-s)")] \
            if left < min(20.0, seconds) else run_job(kind, spec, device == "cuda", min(seconds, max(left, 20.0)),
                                                      tmp / f"{kind}-{len(rows)}.log")
        rows.extend(got)
        log(f"{spec['section']}: {check}: {', '.join(r['status'] for r in got)} ({time.perf_counter() - t:.1f} s)")

    def done(check: str) -> List[dict]:
        return [r["figures"] for r in rows if r["section"] == "train" and r["check"] == check and r["status"] == "ok"]

    def train(compiled: bool) -> None:
        for name in [n for n, m in MODES.items() if m[2] == compiled]:
            reason = mode_skip_reason(MODES[name], device)
            if reason:
                rows.append(row("train", name, "skipped", reason))
            else:
                run("train", {"section": "train", "overrides": overrides(name)}, name, limit * (1 + compiled))
        if not compiled and done(dmode):
            run("train", {"section": "train", "overrides": overrides(dmode, "grad_every=1")}, dmode + GRAD_SHARE)

    if "train" in sections:
        train(compiled=False)
    for n in workers if "loader" in sections else []:
        reuse = done(dmode)[0] if done(dmode) and n == max(workers) else None    # the train row: same mode, workers
        run("loader", {"section": "loader", "workers": n, "reuse": reuse, "batches": z["batches"],
                       "overrides": overrides(dmode, f"data.workers={n}")}, f"{n} workers ({dmode})")
    if "heatmaps" in sections:
        run("heatmaps", {"section": "heatmaps", "tree": str(tree), "tmp": str(tmp), "batches": z["heat"],
                         "stages": z["stages"], "size": z["heat_size"], "jobs": jobs}, "estimator")
    if "eval" in sections:
        classes = len({r.pid for r in Manifest.load(cache / "manifest.json").records if r.split in ("train", "val")})
        run("eval", {"section": "eval", "batch": z["eval_batch"], "classes": classes, "overrides": overrides()},
            "feature extraction")
        for shot in z["shots"]:
            run("eval", {"section": "eval", "shot": shot}, f"metrics {shot}-shot")
    if "ddp" in sections and ddp_skip_reason(device):
        rows.append(row("ddp", f"torchrun {procs} process(es)", "skipped", ddp_skip_reason(device)))
    elif "ddp" in sections:
        ids = procs * max(1, round(config(overrides()).data.num_ids / procs))        # divisible by the processes
        run("ddp", {"section": "ddp", "ddp": True, "procs": procs, "overrides": overrides(
            dmode, f"data.num_ids={ids}", f"data.workers={max(1, max(workers) // procs)}")}, f"torchrun {procs} process(es)")
    if "train" in sections:
        train(compiled=True)                              # last: the slowest check and the riskiest
    rows.sort(key=lambda r: SECTIONS.index(r["section"]))
    add_ratios(rows, dmode)
    return rows


def add_ratios(rows: List[dict], dmode: str) -> None:
    """Each row's one-line result, and its ratio to the row of this run that it names."""
    train = {r["check"]: r["figures"] for r in rows if r["section"] == "train" and r["status"] == "ok"}
    for r in rows:
        f, sec, chk = r["figures"], r["section"], r["check"]
        base = chk[:-len(GRAD_SHARE)] if chk.endswith(GRAD_SHARE) else "float32" if sec == "train" else dmode
        if r["status"] != "ok":
            r["result"] = f"{r['status']}: {r['reason']}"
        elif sec == "loader":
            r["result"] = f"{100 * f['data_wait_share']:.1f}% of a step waits for data"
            r["ratio"] = f"loader alone / model {f['loader_over_model']:.2f}"
        elif sec == "heatmaps":
            r["result"] = f"batch {f['batch']}" if chk == "best batch" else f"{f['job_images_per_s']:.1f} img/s end to end"
            r["ratio"] = f"{f['ratio']:.2f} of the forward (target >= 0.85)"
        elif "seconds" in f:
            r["result"], r["ratio"] = f"{f['seconds']:.3f} s", f"{f['speedup']:.1f}x the per-query loop"
        else:
            r["result"] = f"{f['images_per_s']:.1f} img/s"
        if r["status"] == "ok" and sec in ("train", "ddp") and base in train:
            key, what = ("vs_one_process", f"one process ({dmode})") if sec == "ddp" else ("vs_float32", "float32") \
                if base == "float32" and not chk.endswith(GRAD_SHARE) else \
                ("vs_without_grad_share", f"{base} without the gradient shares")
            f[key] = f["images_per_s"] / train[base]["images_per_s"]
            r["ratio"] = f"{f[key]:.2f}x {what}"
            if key == "vs_float32":
                f["memory_vs_float32"] = f["peak_memory_mib"] / train[base]["peak_memory_mib"]
                r["ratio"] += f" (memory {f['memory_vs_float32']:.2f}x)"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="See the module docstring.")
    ap.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    ap.add_argument("--quick", action="store_true", help="tiny model and data (the CPU test's setting)")
    ap.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="JSON summary (default gpu_check.json)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {','.join(SECTIONS)}")
    ap.add_argument("--workers", type=int, nargs="+", help="loader check's DataLoader workers (default 4 8; --quick 2)")
    ap.add_argument("--budget-s", type=float, help="start no check after this many seconds (default 480; --quick 600)")
    ap.add_argument("--ddp-procs", type=int, help="torchrun processes of the ddp check (default: one per GPU; CPU 1)")
    ap.add_argument("--_worker", type=json.loads, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        return worker_main(*args._worker) or 0
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device, most = ("cuda" if gpus else "cpu") if args.device == "auto" else args.device, gpus or 64
    for bad, message in [(set(sections) - set(SECTIONS), f"--only: unknown section(s) "
                          f"{', '.join(s for s in sections if s not in SECTIONS)}; choose from {', '.join(SECTIONS)}"),
                         (device == "cuda" and not gpus, "--device cuda: CUDA is not available here "
                          "(torch.cuda.is_available() is False); use --device cpu"),
                         (args.workers and min(args.workers) < 0, "--workers: worker counts must be >= 0"),
                         (args.ddp_procs is not None and not 1 <= args.ddp_procs <= most,
                          f"--ddp-procs: between 1 and {most}{' (the GPUs present)' if gpus else ''}")]:
        if bad:
            ap.error(message)
    z, t0 = SIZES[args.quick], time.perf_counter()
    torch.set_num_threads(1 if args.quick else torch.get_num_threads())
    info = {"device": device, "torch": torch.__version__, "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "triton": has_triton()}
    if device == "cuda":
        info.update(gpu=torch.cuda.get_device_name(0), gpus=gpus, cuda=torch.version.cuda,
                    capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                    cudnn=torch.backends.cudnn.version(),
                    nccl=str(torch.cuda.nccl.version()) if torch.distributed.is_nccl_available() else None)
    with tempfile.TemporaryDirectory(prefix="vireid-gpu-check-") as tmp:
        rows = run_checks(device, args.quick, sections, args.workers or z["workers"], args.budget_s or z["budget"],
                          args.ddp_procs or (gpus if device == "cuda" else 1), Path(tmp),
                          lambda msg: print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True))
    seconds = time.perf_counter() - t0
    table = "\n".join(["| section | check | result | ratio | details |", "|:---|:---|:---|:---|:---|"] + [
        f"| {r['section']} | {r['check']} | {r['result']} | {r['ratio']} | {r['details']} |" for r in rows])
    print(f"gpu_check: {info.get('gpu', 'CPU')} ({device}), {'--quick' if args.quick else 'full'} run, {seconds:.0f} s, "
          f"{torch.get_num_threads()} torch thread(s) per process; every figure measured in this run\n{table}")
    if any(r["section"] == "ddp" and r["figures"].get("processes") == 1 for r in rows):
        print(f"note on the ddp row: {ONE_RANK}")
    bad = [f"{r['section']}/{r['check']}/{k}" for r in rows for k, v in r["figures"].items() if not math.isfinite(v)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"host": info, "quick": args.quick, "seconds": seconds, "sizes": z, "table": table,
                                    "sections": {s: [r for r in rows if r["section"] == s] for s in sections}},
                                   indent=2) + "\n")
    fails = sum(r["status"] == "failed" for r in rows)
    print(f"written {args.out}; {len(rows)} rows: {sum(r['status'] == 'ok' for r in rows)} ok, "
          f"{sum(r['status'] == 'skipped' for r in rows)} skipped, {fails} failed"
          + (f"; non-finite figures: {', '.join(bad)}" if bad else ""))
    return 1 if fails or bad else 0


if __name__ == "__main__":
    sys.exit(main())
