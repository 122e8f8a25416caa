"""Everything that needs a GPU, measured by one command: one table printed, the same as JSON.

    python benchmarks/gpu_check.py [--device auto|cuda|cpu] [--quick] [--out gpu_check.json]
                                   [--only train,loader,heatmaps,eval,ddp] [--budget-s 480]
                                   [--workers 4 8] [--isolate auto|yes|no] [--threads N] [--ddp-procs N]

On synthetic SYSU-MM01 data made in a temporary folder (``vireid-prep synth`` and the keypoints
estimator: no weights, no download) it measures

* **train**: the trainer itself (``vireid-train --profile``, :mod:`vireid.experiments.profile`) at the
  paper's setting (ResNet-50, 288x144, 8 ids x 4 RGB x 4 IR, random weights) in each speed mode:
  float32, bf16 and fp16 autocast, channels-last on / off, ``torch.compile``; training images/s
  (and without the data wait), its ratio to float32, peak GPU memory, warm-up time, whether the
  losses stayed finite; every mode without the per-loss gradient shares (``grad_every=0``), and
  the default mode once more with them measured every step (``grad_every=1``,
  :mod:`vireid.engine.grad_share`: one extra backward per loss term), against that mode without;
* **loader**: the share of a step spent waiting for data with ``--workers`` (4 and 8) DataLoader
  workers in the default mode (speed ``auto``), and the loader alone (``bench_train.loader_rate``)
  against the model's images/s;
* **heatmaps**: ``vireid-prep heatmaps`` with the 5-stage GCCPM at 256x256 on the device, end to end
  against the estimator's own batched forward (``bench_heatmaps.estimator_rates``; target >= 0.85)
  for several batch sizes, and the best one;
* **eval**: ``vireid-eval``'s feature extraction images/s, and the metric time on a SYSU-MM01-size
  distance matrix against the per-query loop (``bench_eval_metrics.time_trial``, identical numbers);
* **ddp**: ``vireid-train`` under ``torchrun`` with NCCL on the GPUs present (gloo on a CPU). With one
  GPU the process initialises a one-process NCCL group itself, so the trainer still runs
  DistributedDataParallel over NCCL (NCCL refuses two ranks on one GPU). A world size of 1 checks
  that the DDP path runs (process group, the DDP wrapper, its bucketed gradient all-reduce over
  one rank) and its overhead against one plain process; it cannot check what needs two ranks:
  SyncBatchNorm falls back to plain BatchNorm, the hetero-center gather of the global batch is
  a no-op, and nothing crosses a link between GPUs. The row says so.

Every figure is measured in this run, or is a ratio of two that are. A capability the host
lacks (no CUDA, no bfloat16, no triton for ``torch.compile``, no NCCL) gives a row
``skipped: reason``; a mode that fails gives a row ``failed: reason`` and the rest goes on. On
CUDA each training mode, the heatmap and the eval checks run in a process of their own (a
crash or a hung compile costs one row; peak memory is per mode), with a time limit.
The exit status is 1 when a row failed.

``--device cpu --quick`` (tests/benchmarks/test_gpu_check.py) runs the same code on a tiny
model and data set (ResNet-18 at 96x48, 2 ids x 2 + 2, a 1-stage GCCPM at 64x64, one torch
thread per process) on a CPU in about a minute, so the script cannot rot; there the CUDA-only
modes are skipped rows and DDP runs over a one-process gloo group, the path of a one-GPU host.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
for _p in (str(HERE), str(REPO)):                     # the repo's packages and the sibling benchmarks
    if _p not in sys.path:
        sys.path.insert(0, _p)

import torch  # noqa: E402

SECTIONS = ("train", "loader", "heatmaps", "eval", "ddp")
PRESET = REPO / "configs" / "sysu.yaml"
#: --quick: the tests' tiny network (ResNet-18 at 96x48, narrow heads), 2 ids x 2 RGB + 2 IR.
QUICK_MODEL = ["model.backbone=resnet18", "data.input_size=[96, 48]", "model.stripe_dim=32",
               "model.teacher_dim=64", "model.pose_channels=64", "model.deconv_channels=32",
               "model.refine_channels=32", "data.num_ids=2", "data.num_per_modality=2"]
#: Training modes: name -> speed switches (the rest of the paper's preset unchanged).
MODES: Dict[str, Dict[str, Any]] = {
    "float32": {"amp": False, "channels_last": False, "compile": False},
    "bf16": {"amp": "bf16", "channels_last": False, "compile": False},
    "fp16": {"amp": "fp16", "channels_last": False, "compile": False},
    "float32 + channels_last": {"amp": False, "channels_last": True, "compile": False},
    "bf16 + channels_last": {"amp": "bf16", "channels_last": True, "compile": False},
    "fp16 + channels_last": {"amp": "fp16", "channels_last": True, "compile": False},
    "bf16 + channels_last + compile": {"amp": "bf16", "channels_last": True, "compile": True},
}
BASELINE_MODE = "float32"
RESULT_TAG = "GPU_CHECK_ROWS "
#: what a one-process ddp row shows and does not (its details, and a note under the table)
ONE_RANK = ("world size 1: checks that the DDP path runs and its overhead; cannot check SyncBatchNorm "
            "(falls back to BatchNorm), the hetero-center gather (a no-op) or traffic between GPUs")
#: the train check of the default mode with the gradient shares measured every step
GRAD_SHARE = " + grad_every=1"


# ----------------------------------------------------------------------------- settings and rows
@dataclass
class Plan:
    """What one run measures; :func:`make_plan` fills it for the device and ``--quick``."""

    device: str
    quick: bool
    ids: int
    images_per_camera: int
    source_size: Optional[List[int]]
    steps: int
    warmup: int
    workers: List[int]
    loader_batches: int
    heat_batches: List[int]
    heat_stages: int
    heat_size: int
    jobs: int
    eval_batch: int
    metric_shots: List[str]
    metric_repeat: int
    ddp_procs: int
    row_timeout_s: float
    compile_timeout_s: float
    budget_s: float
    isolate: bool
    threads: Optional[int] = None                    # torch threads per process (None: torch's default)
    model: List[str] = field(default_factory=list)

    def overrides(self, **extra: Any) -> List[str]:
        """configs/sysu.yaml overrides of a training check (``extra``: dotted keys, '__' for '.')."""
        # random weights: no ImageNet backbone, no LIP checkpoint for the pose branch (the paper preset
        # requires model.pose_init to be given; null is its documented choice for a random start);
        # the check's cache holds exact keypoints, which the paper preset refuses unless told
        base = ["model.pretrained=null", "model.pose_init=null", "data.require_estimator=null", "progress=false",
                "log_every=100000", "grad_every=0",
                f"device={self.device}", f"data.workers={max(self.workers)}"] + self.model
        return base + [f"{k.replace('__', '.')}={_yaml(v)}" for k, v in extra.items()]


def _yaml(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def make_plan(device: str, quick: bool, workers: Optional[Sequence[int]], budget_s: Optional[float],
              isolate: str, threads: Optional[int] = None, ddp_procs: Optional[int] = None) -> Plan:
    cores = os.cpu_count() or 2
    if quick:
        plan = Plan(device=device, quick=True, ids=8, images_per_camera=1, source_size=None, steps=2, warmup=1,
                    workers=list(workers or [2]), loader_batches=6, heat_batches=[8], heat_stages=1,
                    heat_size=64, jobs=2, eval_batch=16, metric_shots=["single"], metric_repeat=1,
                    ddp_procs=1, row_timeout_s=240, compile_timeout_s=240, budget_s=budget_s or 600,
                    isolate=False, model=list(QUICK_MODEL))
    else:
        plan = Plan(device=device, quick=False, ids=96, images_per_camera=2, source_size=[256, 128], steps=20,
                    warmup=2, workers=list(workers or [4, 8]), loader_batches=40, heat_batches=[16, 32, 64, 128],
                    heat_stages=5, heat_size=256, jobs=max(2, min(8, cores // 2)), eval_batch=64,
                    metric_shots=["single", "multi"], metric_repeat=1, ddp_procs=2, row_timeout_s=150,
                    compile_timeout_s=300, budget_s=budget_s or 480, isolate=False)
    if device == "cuda":
        plan.ddp_procs = max(1, torch.cuda.device_count())
    if ddp_procs is not None:
        plan.ddp_procs = ddp_procs
    plan.isolate = {"auto": device == "cuda", "yes": True, "no": False}[isolate]
    # --quick: one thread; on a small shared CPU two threads of a busy core run several times slower
    plan.threads = threads if threads is not None else (1 if quick else None)
    return plan


@dataclass
class Row:
    """One line of the summary: ``status`` ok | skipped | failed; figures are finite numbers."""

    section: str
    check: str
    status: str = "ok"
    reason: str = ""
    figures: Dict[str, float] = field(default_factory=dict)
    result: str = ""
    ratio: str = ""
    details: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _failed(section: str, check: str, exc: BaseException) -> Row:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return Row(section, check, "failed", f"{type(exc).__name__}: {msg[:300]}")


# ----------------------------------------------------------------------------- capabilities
def cuda_devices() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton as _has
        return bool(_has())
    except Exception:  # noqa: BLE001 - an old or stripped torch: no triton
        return False


def mode_skip_reason(mode: Dict[str, Any], device: str) -> Optional[str]:
    """Why a training mode cannot run here, or None."""
    needs_cuda = mode["amp"] is not False or mode["channels_last"] or mode["compile"]
    if device != "cuda":
        return "needs CUDA (this run is on the CPU)" if needs_cuda else None
    if mode["amp"] == "bf16" and not _bf16_native():
        cap = ".".join(map(str, torch.cuda.get_device_capability()))
        return f"this GPU has no bfloat16 (compute capability {cap})"
    if mode["compile"] and not has_triton():
        return "torch.compile on CUDA needs triton, which this torch installation lacks"
    return None


def default_mode(device: str) -> str:
    """The mode of speed ``auto`` on this device (what vireid-train uses by default)."""
    if device != "cuda":
        return "float32"
    return "bf16 + channels_last" if _bf16_native() else "fp16 + channels_last"


def _bf16_native() -> bool:
    """bfloat16 in hardware, as speed.amp auto decides (emulated bf16 on a V100 / T4 does not count)."""
    from vireid.engine.speed import cuda_bf16_native
    return cuda_bf16_native()


def ddp_skip_reason(device: str) -> Optional[str]:
    dist = torch.distributed
    if not dist.is_available():
        return "this torch build has no torch.distributed"
    if device == "cuda" and not dist.is_nccl_available():
        return "this torch build has no NCCL"
    if device != "cuda" and not dist.is_gloo_available():
        return "this torch build has no gloo"
    return None


# ----------------------------------------------------------------------------- the checks (jobs)
def _train_config(overrides: Sequence[str]):
    from vireid.engine.config import load_config

    return load_config(PRESET, list(overrides))


def job_train(spec: Dict[str, Any]) -> List[Row]:
    """One training mode through the trainer (vireid-train --profile)."""
    from vireid.experiments.profile import profile_training

    report = profile_training(_train_config(spec["overrides"]), spec["cache"], spec["steps"], warmup=spec["warmup"])
    d = report.to_dict()
    total = d["loss_values"]["total"]
    row = Row("train", spec["name"], figures={
        "images_per_s": d["images_per_s"], "compute_images_per_s": d["compute_images_per_s"],
        "peak_memory_mib": d["peak_memory_mib"], "data_wait_share": d["data_wait_share"], "warmup_s": d["warmup_s"],
        "step_s": d["step_s"], "images_per_step": d["images_per_step"], "loss_total": total})
    row.details = (f"{d['speed']}; without data wait {d['compute_images_per_s']:.1f} img/s; peak "
                   f"{d['peak_memory_mib']:.0f} MiB ({d['memory_kind']}); data wait {100 * d['data_wait_share']:.1f}%; "
                   f"warm-up {d['warmup_s']:.1f} s")
    if not report.losses_finite:
        row.status, row.reason = "failed", f"non-finite loss: {d['loss_values']}"
    return [row]


def job_loader(spec: Dict[str, Any]) -> List[Row]:
    """The loader stall share with ``workers`` workers, and the loader alone against the model."""
    from bench_train import loader_rate
    from vireid.experiments.profile import profile_training

    cfg = _train_config(spec["overrides"])
    trained = spec.get("reuse")                     # the train row of the same mode and workers, if it ran
    if trained is None:
        trained = profile_training(cfg, spec["cache"], spec["steps"], warmup=spec["warmup"]).to_dict()
    alone = loader_rate(Path(spec["cache"]), cfg, spec["workers"], spec["batches"], torch.device(spec["device"]))
    model = trained["compute_images_per_s"]
    row = Row("loader", spec["name"], figures={
        "data_wait_share": trained["data_wait_share"], "images_per_s": trained["images_per_s"],
        "compute_images_per_s": model, "loader_images_per_s": alone, "loader_over_model": alone / model})
    row.details = (f"training {trained['images_per_s']:.1f} img/s, {model:.1f} without the wait"
                   f"{' (the train row above)' if spec.get('reuse') else ''}; loader alone {alone:.1f} img/s")
    return [row]


def job_heatmaps(spec: Dict[str, Any]) -> List[Row]:
    """vireid-prep heatmaps end to end against the estimator's forward, per batch size."""
    from bench_heatmaps import estimator_rates, random_gccpm
    from vireid.data.scan import scan

    torch.manual_seed(0)
    tmp = Path(spec["tmp"])
    tree = Path(spec["tree"])
    manifest = scan("sysu", tree)
    weights = random_gccpm(tmp / f"gccpm{spec['stages']}.pth", spec["stages"])
    rows: List[Row] = []
    best: Optional[Dict[str, Any]] = None
    for batch in spec["batches"]:
        name = f"batch {batch}"
        try:
            r = estimator_rates(manifest, tree, tmp / f"heat{batch}", weights, batch, spec["device"], spec["jobs"],
                                size=spec["size"])
        except Exception as exc:  # noqa: BLE001 - one batch size failing (e.g. out of memory) is a row
            rows.append(_failed("heatmaps", name, exc))
            continue
        rows.append(Row("heatmaps", name, figures={"job_images_per_s": r["job_ips"],
                                                   "forward_images_per_s": r["forward_ips"], "ratio": r["ratio"],
                                                   "batch": batch, "images": r["images"]},
                        details=f"forward alone {r['forward_ips']:.1f} img/s; {r['images']} images, GCCPM "
                                f"{spec['stages']} stages at {r['estimator_size']}, {spec['jobs']} decoding threads"))
        if best is None or r["job_ips"] > best["job_ips"]:
            best = {**r, "batch": batch}
    if best is not None:
        rows.append(Row("heatmaps", "best batch", figures={"batch": best["batch"], "ratio": best["ratio"],
                                                           "job_images_per_s": best["job_ips"]},
                        details=f"the batch size with the highest end-to-end images/s (target ratio >= 0.85: "
                                f"{'met' if best['ratio'] >= 0.85 else 'not met'})"))
    return rows


def job_eval(spec: Dict[str, Any]) -> List[Row]:
    """vireid-eval's feature extraction, and the SYSU-MM01 metrics against the per-query loop."""
    from bench_eval_metrics import NUM_QUERIES, time_trial
    from vireid.data.manifest import Manifest
    from vireid.inputs.dataset import make_label_map, training_indices
    from vireid.cache.reader import HeatmapCache
    from vireid.evaluation.features import extract_features
    from vireid.model import PoseVIReIDNet

    rows: List[Row] = []
    try:
        cache = HeatmapCache(spec["cache"])
        cfg = _train_config(spec["overrides"])
        idx, _ = training_indices(cache, Manifest.load(Path(spec["cache"]) / "manifest.json"), ["train", "val"])
        classes = len(make_label_map(cache.metadata()["pid"][idx].tolist()))
        torch.manual_seed(0)
        model = PoseVIReIDNet(cfg.model_config(num_classes=classes))
        indices = list(range(len(cache)))
        device = spec["device"]
        extract_features(model, cache, indices[:spec["batch"]], batch_size=spec["batch"], device=device)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        feats = extract_features(model, cache, indices, batch_size=spec["batch"], device=device)
        seconds = time.perf_counter() - t0
        finite = all(bool(torch.isfinite(torch.from_numpy(v)).all()) for v in feats.values())
        row = Row("eval", "feature extraction", figures={"images_per_s": len(indices) / seconds,
                                                         "images": len(indices), "batch": spec["batch"]},
                  details=f"{len(indices)} images, batch {spec['batch']}"
                          f"{' (vireid-eval default)' if spec['batch'] == 64 else ''}, {cfg.model.backbone} at "
                          f"{'x'.join(map(str, cfg.data.input_size))}, float32, random weights")
        if not finite:
            row.status, row.reason = "failed", "non-finite features"
        rows.append(row)
    except Exception as exc:  # noqa: BLE001
        rows.append(_failed("eval", "feature extraction", exc))
    for shot in spec["shots"]:
        name = f"metrics {shot}-shot"
        try:
            loop_s, fast, gallery, _ = time_trial(0, shot, spec["repeat"], [1])
            rows.append(Row("eval", name, figures={"seconds": fast[1], "loop_seconds": loop_s,
                                                   "speedup": loop_s / fast[1], "gallery": gallery},
                            details=f"{NUM_QUERIES} queries x {gallery} gallery images, 1 trial, 1 thread; loop "
                                    f"{loop_s:.3f} s; identical numbers"))
        except Exception as exc:  # noqa: BLE001
            rows.append(_failed("eval", name, exc))
    return rows


def job_ddp(spec: Dict[str, Any]) -> List[Row]:
    """Run under torchrun: the trainer's DDP path for a few steps; rank 0 reports."""
    import torch.distributed as dist

    from vireid.experiments.profile import profile_training

    world = int(os.environ.get("WORLD_SIZE", "1"))
    overrides = list(spec["overrides"])
    own_group = False
    if world == 1:
        # one process (one GPU: NCCL refuses two ranks on it): a process group of our own, so the
        # trainer still wraps the model in DistributedDataParallel over NCCL (gloo on a CPU)
        if spec["device"] == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            dist.init_process_group("nccl", init_method="env://", rank=0, world_size=1,
                                    device_id=torch.device("cuda", local))
            overrides.append(f"device=cuda:{local}")
        else:
            dist.init_process_group("gloo", init_method="env://", rank=0, world_size=1)
        own_group = True
    try:
        report = profile_training(_train_config(overrides), spec["cache"], spec["steps"], warmup=spec["warmup"])
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()
    d = report.to_dict()
    row = Row("ddp", f"torchrun {world} process(es), {report.backend or 'no process group'}", figures={
        "processes": world, "images_per_s": d["images_per_s"], "data_wait_share": d["data_wait_share"],
        "peak_memory_mib": d["peak_memory_mib"], "loss_total": d["loss_values"]["total"]})
    row.details = (f"{d['speed']}; {d['images_per_step']:.0f} images per global step; "
                   f"peak {d['peak_memory_mib']:.0f} MiB on rank 0" + (f"; {ONE_RANK}" if world == 1 else ""))
    if report.backend is None:
        row.status, row.reason = "failed", "no process group: the trainer did not run DDP"
    elif not report.losses_finite:
        row.status, row.reason = "failed", f"non-finite loss: {d['loss_values']}"
    return [row] if int(os.environ.get("RANK", "0")) == 0 else []


JOBS: Dict[str, Callable[[Dict[str, Any]], List[Row]]] = {
    "train": job_train, "loader": job_loader, "heatmaps": job_heatmaps, "eval": job_eval, "ddp": job_ddp,
}


# ----------------------------------------------------------------------------- running jobs
def _child_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                                                                  else []))
    return env


def _run_child(cmd: List[str], timeout: float, spec_file: Path, section: str, check: str) -> List[Row]:
    """``cmd`` in a new session; its rows from the result file, or one failed row with the end of its
    output. After ``timeout`` s it gets SIGTERM (torchrun passes it on to its ranks, which run in
    sessions of their own), then SIGKILL with its group; each worker also ends itself at its deadline."""
    result = spec_file.with_suffix(".rows.json")
    log = spec_file.with_suffix(".log")
    with open(log, "w") as out:                      # a file, not a pipe: a straggler cannot block the read
        proc = subprocess.Popen(cmd, cwd=REPO, env=_child_env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            return [Row(section, check, "failed", f"did not finish within {timeout:.0f} s (time limit of the check)")]
    if result.is_file():
        return [Row(**r) for r in json.loads(result.read_text())]
    lines = log.read_text(errors="replace").strip().splitlines()
    tail = " | ".join(line.strip() for line in lines[-3:])
    return [Row(section, check, "failed", f"exit status {proc.returncode}: {tail[-400:]}")]


def run_job(kind: str, spec: Dict[str, Any], plan: Plan, tmp: Path, timeout: float, check: str) -> List[Row]:
    """A check in this process, or in a child (``plan.isolate``; DDP: under torchrun)."""
    section = "ddp" if kind == "ddp" else spec.get("section", kind)
    if kind != "ddp" and not plan.isolate:
        try:
            return JOBS[kind](spec)
        except Exception as exc:  # noqa: BLE001 - a failing check is a row, the rest goes on
            return [_failed(section, check, exc)]
    spec_file = Path(tempfile.mkstemp(prefix=f"{kind}-", suffix=".json", dir=tmp)[1])
    spec_file.write_text(json.dumps({"kind": kind, "spec": spec, "deadline_s": timeout + 5,
                                     "threads": plan.threads}))
    if kind == "ddp":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={spec['procs']}",
               str(Path(__file__).resolve()), "--_worker", str(spec_file)]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", str(spec_file)]
    return _run_child(cmd, timeout, spec_file, section, check)


def worker_main(spec_file: Path) -> None:
    """``--_worker FILE``: run one job, write its rows beside FILE (rank 0 under torchrun)."""
    job = json.loads(spec_file.read_text())
    if job.get("deadline_s"):                        # ends this process even if its parent cannot
        signal.alarm(max(1, math.ceil(job["deadline_s"])))
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    section = "ddp" if job["kind"] == "ddp" else job["spec"].get("section", job["kind"])
    try:
        rows = JOBS[job["kind"]](job["spec"])
    except Exception as exc:  # noqa: BLE001
        rows = [_failed(section, job["spec"].get("name", job["kind"]), exc)]
        if int(os.environ.get("RANK", "0")) != 0:
            rows = []
    if int(os.environ.get("RANK", "0")) == 0:
        out = spec_file.with_suffix(".rows.json")
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps([r.to_dict() for r in rows]))
        os.replace(tmp, out)


# ----------------------------------------------------------------------------- the whole check
def run_checks(plan: Plan, sections: Sequence[str], tmp: Path, log: Callable[[str], None]) -> List[Row]:
    from bench_train import make_sysu_cache

    start = time.perf_counter()
    h, w = (96, 48) if plan.quick else (288, 144)
    t0 = time.perf_counter()
    tree, cache = make_sysu_cache(tmp, plan.ids, (h, w), plan.images_per_camera,
                                  image_size=tuple(plan.source_size) if plan.source_size else None, jobs=plan.jobs)
    log(f"synthetic SYSU-MM01 ({plan.ids} ids) and its heatmap cache at {h}x{w}: {time.perf_counter() - t0:.1f} s")
    rows: List[Row] = []

    def left() -> float:
        return plan.budget_s - (time.perf_counter() - start)

    def run(kind: str, spec: Dict[str, Any], check: str, limit: float) -> None:
        section = spec.get("section", kind)
        if left() < min(20.0, limit):
            rows.append(Row(section, check, "skipped", f"time budget of {plan.budget_s:.0f} s spent (--budget-s)"))
            return
        t = time.perf_counter()
        got = run_job(kind, {**spec, "name": check}, plan, tmp, min(limit, max(left(), 20.0)), check)
        rows.extend(got)
        log(f"{section}: {check}: " + ", ".join(r.status for r in got) + f" ({time.perf_counter() - t:.1f} s)")

    common = {"cache": str(cache), "steps": plan.steps, "warmup": plan.warmup, "device": plan.device}
    dmode = default_mode(plan.device)

    def train_modes(compiled: bool) -> None:
        for name, mode in MODES.items():
            if mode["compile"] != compiled:
                continue
            reason = mode_skip_reason(mode, plan.device)
            if reason:
                rows.append(Row("train", name, "skipped", reason))
                continue
            limit = plan.compile_timeout_s if mode["compile"] else plan.row_timeout_s
            run("train", {**common, "section": "train",
                          "overrides": plan.overrides(**{f"speed__{k}": v for k, v in mode.items()})}, name, limit)
        if not compiled and any(r.section == "train" and r.check == dmode and r.status == "ok" for r in rows):
            speed = {f"speed__{k}": v for k, v in MODES[dmode].items()}
            run("train", {**common, "section": "train", "overrides": plan.overrides(grad_every=1, **speed)},
                dmode + GRAD_SHARE, plan.row_timeout_s)

    if "train" in sections:
        train_modes(compiled=False)
    if "loader" in sections:
        same = [r for r in rows if r.section == "train" and r.check == dmode and r.status == "ok"]
        for workers in plan.workers:
            speed = {f"speed__{k}": v for k, v in MODES[dmode].items()}
            reuse = None
            if same and workers == max(plan.workers):        # the train rows ran with these workers
                f = same[0].figures
                reuse = {k: f[k] for k in ("data_wait_share", "images_per_s", "compute_images_per_s")}
            run("loader", {**common, "section": "loader", "workers": workers, "mode": dmode, "reuse": reuse,
                           "batches": plan.loader_batches,
                           "overrides": plan.overrides(data__workers=workers, **speed)},
                f"{workers} workers ({dmode})", plan.row_timeout_s)
    if "heatmaps" in sections:
        run("heatmaps", {"section": "heatmaps", "tree": str(tree), "tmp": str(tmp), "batches": plan.heat_batches,
                         "stages": plan.heat_stages, "size": plan.heat_size, "device": plan.device,
                         "jobs": plan.jobs}, "estimator", plan.row_timeout_s)
    if "eval" in sections:
        run("eval", {"section": "eval", "cache": str(cache), "device": plan.device, "batch": plan.eval_batch,
                     "shots": plan.metric_shots, "repeat": plan.metric_repeat,
                     "overrides": plan.overrides()}, "eval", plan.row_timeout_s)
    if "ddp" in sections:
        reason = ddp_skip_reason(plan.device)
        check = f"torchrun {plan.ddp_procs} process(es)"
        if reason:
            rows.append(Row("ddp", check, "skipped", reason))
        else:
            n = plan.ddp_procs
            cfg = _train_config(plan.overrides())
            num_ids = n * max(1, round(cfg.data.num_ids / n))          # divisible by the processes
            speed = {f"speed__{k}": v for k, v in MODES[dmode].items()}
            run("ddp", {**common, "section": "ddp", "procs": n,
                        "overrides": plan.overrides(data__num_ids=num_ids,
                                                    data__workers=max(1, max(plan.workers) // n), **speed)},
                check, plan.row_timeout_s)
    if "train" in sections:
        train_modes(compiled=True)                           # last: the slowest check and the riskiest
    rows.sort(key=lambda r: SECTIONS.index(r.section))       # stable: the order of the checks within a section
    _add_ratios(rows, dmode)
    return rows


def _add_ratios(rows: List[Row], dmode: str) -> None:
    """Headline, ratio against the row it names, and the row's one-line result (ok rows)."""
    train = {r.check: r for r in rows if r.section == "train" and r.status == "ok"}
    base = train.get(BASELINE_MODE)
    for r in rows:
        f = r.figures
        if r.status != "ok":
            r.result = f"{r.status}: {r.reason}"
            continue
        if r.section == "train":
            r.result = f"{f['images_per_s']:.1f} img/s"
            without = train.get(r.check[:-len(GRAD_SHARE)]) if r.check.endswith(GRAD_SHARE) else None
            if without is not None:
                f["vs_without_grad_share"] = f["images_per_s"] / without.figures["images_per_s"]
                r.ratio = f"{f['vs_without_grad_share']:.2f}x {without.check} without the gradient shares"
            elif base is not None:
                f["vs_float32"] = f["images_per_s"] / base.figures["images_per_s"]
                f["memory_vs_float32"] = f["peak_memory_mib"] / base.figures["peak_memory_mib"]
                r.ratio = f"{f['vs_float32']:.2f}x float32 (memory {f['memory_vs_float32']:.2f}x)"
        elif r.section == "loader":
            r.result = f"{100 * f['data_wait_share']:.1f}% of a step waits for data"
            r.ratio = f"loader alone / model {f['loader_over_model']:.2f}"
        elif r.section == "heatmaps":
            r.result = (f"batch {f['batch']:.0f}" if r.check == "best batch"
                        else f"{f['job_images_per_s']:.1f} img/s end to end")
            r.ratio = f"{f['ratio']:.2f} of the forward (target >= 0.85)"
        elif r.section == "eval" and "images_per_s" in f:
            r.result = f"{f['images_per_s']:.1f} img/s"
        elif r.section == "eval":
            r.result = f"{f['seconds']:.3f} s"
            r.ratio = f"{f['speedup']:.1f}x the per-query loop"
        elif r.section == "ddp":
            r.result = f"{f['images_per_s']:.1f} img/s"
            single = train.get(dmode)
            if single is not None:
                f["vs_one_process"] = f["images_per_s"] / single.figures["images_per_s"]
                r.ratio = f"{f['vs_one_process']:.2f}x one process ({dmode})"


def format_table(rows: Sequence[Row]) -> str:
    lines = ["| section | check | result | ratio | details |", "|:---|:---|:---|:---|:---|"]
    for r in rows:
        lines.append(f"| {r.section} | {r.check} | {r.result} | {r.ratio} | {r.details} |")
    return "\n".join(lines)


def host_info(device: str) -> Dict[str, Any]:
    info: Dict[str, Any] = {"device": device, "torch": torch.__version__, "python": platform.python_version(),
                            "cpu_count": os.cpu_count(), "machine": platform.machine(),
                            "torch_threads": torch.get_num_threads()}
    if device == "cuda":
        info.update(gpu=torch.cuda.get_device_name(0), gpus=torch.cuda.device_count(), cuda=torch.version.cuda,
                    capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                    cudnn=torch.backends.cudnn.version(), bf16=torch.cuda.is_bf16_supported(), triton=has_triton())
        try:
            v = torch.cuda.nccl.version()
            info["nccl"] = ".".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
        except Exception:  # noqa: BLE001 - a build without NCCL
            info["nccl"] = None
    return info


def _finite_figures(rows: Sequence[Row]) -> List[str]:
    return [f"{r.section}/{r.check}/{k}" for r in rows for k, v in r.figures.items()
            if not (isinstance(v, (int, float)) and math.isfinite(v))]


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="See the module docstring.")
    ap.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    ap.add_argument("--quick", action="store_true", help="tiny model and data (the CPU test's setting)")
    ap.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="JSON summary (default gpu_check.json)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {','.join(SECTIONS)}")
    ap.add_argument("--workers", type=int, nargs="+", default=None, help="DataLoader workers of the loader check "
                    "(default 4 8; --quick 1 2)")
    ap.add_argument("--budget-s", type=float, default=None, help="stop starting checks after this many seconds "
                    "(default 480; --quick 600)")
    ap.add_argument("--isolate", default="auto", choices=("auto", "yes", "no"),
                    help="each check in its own process (auto: on CUDA)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per process (default: torch's; "
                    "--quick: 1)")
    ap.add_argument("--ddp-procs", type=int, default=None, help="torchrun processes of the ddp check (default: "
                    "the GPUs present; on a CPU 2, --quick 1)")
    ap.add_argument("--_worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker is not None:
        worker_main(args._worker)
        return 0
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        ap.error(f"--only: unknown section(s) {', '.join(bad)}; choose from {', '.join(SECTIONS)}")
    device = ("cuda" if cuda_devices() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not cuda_devices():
        ap.error("--device cuda: CUDA is not available here (torch.cuda.is_available() is False); use --device cpu")
    if args.workers and min(args.workers) < 0:
        ap.error("--workers: worker counts must be >= 0")
    if args.threads is not None and args.threads < 1:
        ap.error("--threads: must be >= 1")
    if args.ddp_procs is not None and not 1 <= args.ddp_procs <= max(1, cuda_devices() if device == "cuda" else 64):
        ap.error(f"--ddp-procs: between 1 and {cuda_devices()} (the GPUs present)" if device == "cuda"
                 else "--ddp-procs: between 1 and 64")
    plan = make_plan(device, args.quick, args.workers, args.budget_s, args.isolate, args.threads, args.ddp_procs)
    if plan.threads:
        torch.set_num_threads(plan.threads)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    info = host_info(device)
    log(f"gpu_check on {info.get('gpu', 'cpu')} ({'quick' if plan.quick else 'full'}), torch {torch.__version__}")
    with tempfile.TemporaryDirectory(prefix="vireid-gpu-check-") as tmp:
        rows = run_checks(plan, sections, Path(tmp), log)
    seconds = time.perf_counter() - t0
    table = format_table(rows)
    print(f"gpu_check: {info.get('gpu', 'CPU')} ({device}), {'--quick' if plan.quick else 'full'} run, "
          f"{seconds:.0f} s, {torch.get_num_threads()} torch thread(s) per process; every figure measured in this run")
    print(table)
    if any(r.section == "ddp" and r.status == "ok" and r.figures.get("processes") == 1 for r in rows):
        print(f"note on the ddp row: {ONE_RANK}")
    payload = {"host": info, "quick": plan.quick, "seconds": seconds, "plan": dataclasses.asdict(plan),
               "sections": {s: [r.to_dict() for r in rows if r.section == s] for s in sections}, "table": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(args.out.name + ".tmp")
    tmp_out.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp_out, args.out)
    failed = [r for r in rows if r.status == "failed"]
    bad_figures = _finite_figures(rows)
    print(f"written {args.out}; {len(rows)} rows: {sum(r.status == 'ok' for r in rows)} ok, "
          f"{sum(r.status == 'skipped' for r in rows)} skipped, {len(failed)} failed"
          + (f"; non-finite figures: {', '.join(bad_figures)}" if bad_figures else ""))
    return 1 if failed or bad_figures else 0


if __name__ == "__main__":
    sys.exit(main())
