"""DistributedDataParallel training on a CPU: 2 processes, gloo, the tiny model and cache of
test_trainer.py. The processes are spawned with torch.multiprocessing and given torchrun's
environment variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), so the
trainer initialises the process group itself exactly as under torchrun.

What is checked: a run completes on both ranks; the ranks' batches are disjoint and their
union is the 1-process batch; only rank 0 saves checkpoints and writes the log; a 2-process
run matches a 1-process run of the same global batch; DDP resume is exact; the
non-finite guard stops both ranks at the same step with the same message.

Tolerance of the 2-process vs 1-process comparison (one SGD step of the same global batch):
with ``ddp.sync_bn`` and ``ddp.gather_hctri`` on (the defaults) both compute the same losses
and gradients mathematically; on a CPU the global BatchNorm statistics come from
:class:`vireid.engine.distributed.AllReduceBatchNorm` (torch's SyncBatchNorm is CUDA-only),
whose float32 arithmetic differs from torch's BatchNorm kernel by ~1e-6 relative, and the
hetero-center loss's gradient at initialisation amplifies that (a single process running
the same BatchNorm formula differs from torch's by the same amount). So the step's losses
agree within ``rel=1e-5`` and the weights after the step within ``atol=2e-2`` (the step
itself moves the first convolution's weights by up to ~0.8). Measured sensitivity: one
process whose BatchNorm outputs are multiplied by ``1 + 1e-6 * N(0, 1)`` ends the step with
weights up to 8.0e-3 away from the unperturbed run (first convolution); the 2-process run
differed by up to 1.2e-2 there (its losses agree with the single process's within 4e-7
relative), i.e. BatchNorm noise of about 1.5e-6. Since the Refinement Module starts as
GCCPM's, the anti-aliased crops and the sampler's slot split; before them the same
perturbation moved the weights by 7.1e-3 and the 2-process run by 5.2e-3 (``atol=1e-2``). Before the stripe features were taken before the LeakyReLU and
the heads were Xavier-initialised, the same perturbation moved them by 1.6e-3 and the
2-process run by 1.4e-3 (then ``atol=3e-3``).
Without sync_bn each rank normalises over its half of the batch; that setting is only
run here, not compared.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import vireid.engine.joint_loop as loop_mod
import vireid.engine.trainer as trainer_mod
from tests.engine.test_trainer import cache_dir, tiny_config  # noqa: F401 - the module-scoped cache fixture
from vireid.inputs.sampler import CrossModalitySampler
from vireid.model.checkpoint import load_checkpoint
from vireid.engine.distributed import AllReduceBatchNorm
from vireid.engine.runlog import read_log
from vireid.engine.trainer import NonFiniteLossError, train

WORLD = 2
#: The global batch: 2 identities x 2 RGB + 2 IR (each rank: 1 identity, 4 images).
RUN = ["epochs=2", "data.batches_per_epoch=1"]
ATOL = 2e-2

#: name, overrides, out, resume, poison: a rank (``kd`` made inf at its global step 2) or
#: ``(rank, term, factor, call)`` (that rank's ``term`` multiplied by ``factor`` at its ``call``-th step)
Job = Tuple[str, List[str], str, Optional[str], Union[None, int, Tuple[int, str, float, int]]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _record_batches(store: List[List[int]]):
    real = CrossModalitySampler.__iter__

    def recording(self):
        for batch in real(self):
            store.append(sorted(int(k[0]) for k in batch))
            yield batch
    return recording


def _worker(rank: int, ports: Sequence[int], cache: str, jobs: Sequence[Job], result_dir: str,
            world: int = WORLD) -> None:
    torch.set_num_threads(1)
    seen: List[List[int]] = []
    saves: List[str] = []
    CrossModalitySampler.__iter__ = _record_batches(seen)          # this child process only
    real_save = loop_mod.save_checkpoint
    real_losses = loop_mod.compute_losses

    def counting_save(path, payload, **kwargs):
        saves.append(Path(path).name)
        real_save(path, payload, **kwargs)
    loop_mod.save_checkpoint = counting_save
    results: Dict[str, Any] = {}
    for (name, overrides, out, resume, poison), port in zip(jobs, ports):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                          LOCAL_RANK=str(rank))
        del seen[:], saves[:]
        calls = {"n": 0}
        p_rank, p_term, p_factor, p_call = (poison, "kd", float("inf"), 2) if isinstance(poison, int) else (
            poison or (None, "", 1.0, 0))

        def poisoned(*args, **kwargs):
            losses = real_losses(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] == p_call and rank == p_rank:             # one step, on one rank only
                losses[p_term] = losses[p_term] * p_factor
            return losses
        loop_mod.compute_losses = poisoned if poison is not None else real_losses
        record: Dict[str, Any] = {}
        try:
            # a hung or dead peer fails the collective within a minute instead of blocking CI
            res = train(tiny_config("ddp.timeout_minutes=1", *overrides), cache, out, resume=resume)
            record.update(outcome="ok", epochs_done=res.epochs_done, global_step=res.global_step)
        except NonFiniteLossError as exc:
            record.update(outcome="nonfinite", message=str(exc))
        record.update(seen=list(seen), saves=list(saves),
                      initialized=torch.distributed.is_initialized())  # the trainer destroys what it created
        results[name] = record
    Path(result_dir, f"rank{rank}.json").write_text(json.dumps(results))


def _spawn(cache: Path, tmp: Path, jobs: Sequence[Job], world: int = WORLD,
           timeout_s: Optional[float] = None) -> List[Dict[str, Any]]:
    """Run ``jobs`` one after the other on ``world`` processes; with ``timeout_s`` the processes
    are killed and the test fails when they have not all finished by then (a hang fails fast)."""
    ports = [_free_port() for _ in jobs]
    context = mp.start_processes(_worker, args=(ports, str(cache), list(jobs), str(tmp), world), nprocs=world,
                                 join=False, start_method="spawn")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not context.join(timeout=None if deadline is None else max(deadline - time.monotonic(), 0.01)):
        if deadline is not None and time.monotonic() >= deadline:
            for proc in context.processes:
                if proc.is_alive():
                    proc.kill()
            pytest.fail(f"{world} processes still running after {timeout_s:.0f} s (a collective out of step hangs)")
    return [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(world)]


def _steps(run: Path):
    return [r for r in read_log(run / "log.jsonl") if r["kind"] == "step"]


def test_two_processes_match_one_disjoint_ranks_rank0_writes_exact_resume(cache_dir, tmp_path, monkeypatch):  # noqa: F811
    jobs: List[Job] = [
        ("ddp", RUN, str(tmp_path / "ddp"), None, None),
        ("half", ["epochs=1", "data.batches_per_epoch=1"], str(tmp_path / "half"), None, None),
        ("resume", RUN, str(tmp_path / "resumed"), str(tmp_path / "half" / "last.pt"), None),
        ("nonfinite", ["epochs=3", "data.batches_per_epoch=1", "ddp.sync_bn=false", "ddp.gather_hctri=false"],
         str(tmp_path / "nan"), None, 1),
    ]
    ranks = _spawn(cache_dir, tmp_path, jobs)

    # the same global batches in one process
    single_seen: List[List[int]] = []
    monkeypatch.setattr(CrossModalitySampler, "__iter__", _record_batches(single_seen))
    single = train(tiny_config("epochs=1", "data.batches_per_epoch=1"), cache_dir, tmp_path / "single")

    # a run completes on both ranks; the process group is torn down again
    for r in ranks:
        assert r["ddp"]["outcome"] == "ok" and r["ddp"]["epochs_done"] == 2 and r["ddp"]["global_step"] == 2
        assert not r["ddp"]["initialized"]
    # disjoint samples on the two ranks, their union is the 1-process batch
    assert len(ranks[0]["ddp"]["seen"]) == len(ranks[1]["ddp"]["seen"]) == 2 and len(single_seen) == 1
    for a, b, whole in zip(ranks[0]["ddp"]["seen"], ranks[1]["ddp"]["seen"], single_seen):
        assert len(a) == len(b) == 4 and not set(a) & set(b)
        assert sorted(a + b) == whole
    # rank 0 alone writes the checkpoint (once per epoch) and the log
    assert ranks[0]["ddp"]["saves"] == ["last.pt", "last.pt"] and ranks[1]["ddp"]["saves"] == []
    ddp_steps = _steps(tmp_path / "ddp")
    assert [s["step"] for s in ddp_steps] == [1, 2]
    assert (tmp_path / "ddp" / "losses.png").is_file() and not list((tmp_path / "ddp").glob("*.tmp*"))

    # 2 processes == 1 process with the same global batch, after one step (tolerance: module docstring)
    h, b = load_checkpoint(tmp_path / "half" / "last.pt"), load_checkpoint(single.last)
    assert h["model"].keys() == b["model"].keys()                  # AllReduceBatchNorm keeps BatchNorm's keys
    for k, vh in h["model"].items():
        if vh.is_floating_point():
            torch.testing.assert_close(vh, b["model"][k], atol=ATOL, rtol=0, msg=lambda m, k=k: f"{k}: {m}")
        else:
            assert torch.equal(vh, b["model"][k]), k
    (sh,), (sb,) = _steps(tmp_path / "half"), _steps(tmp_path / "single")
    for name in ("id", "hctri", "pose", "kd", "total"):
        assert sh[name] == pytest.approx(sb[name], rel=1e-5, abs=1e-6), name
    assert h["world_size"] == 2 and len(h["rng_ranks"]) == 2

    # DDP resume (1 + 1 epochs) gives exactly the uninterrupted DDP run
    assert all(r["resume"]["outcome"] == "ok" and r["resume"]["epochs_done"] == 2 for r in ranks)
    assert ranks[1]["half"]["saves"] == ranks[1]["resume"]["saves"] == []
    a, c = load_checkpoint(tmp_path / "ddp" / "last.pt"), load_checkpoint(tmp_path / "resumed" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], c["model"][k]), k
    for sa, sc in zip(a["optimizer"]["state"].values(), c["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sc["momentum_buffer"])
    assert [s["total"] for s in _steps(tmp_path / "resumed")] == [s["total"] for s in ddp_steps[1:]]

    # the non-finite guard: inf on rank 1 only, both ranks stop at the same step with the same message
    m0, m1 = ranks[0]["nonfinite"], ranks[1]["nonfinite"]
    assert m0["outcome"] == m1["outcome"] == "nonfinite"
    assert m0["message"] == m1["message"]
    assert "loss 'kd' is inf at epoch 2, step 1" in m0["message"] and "holds epoch 1" in m0["message"]
    assert load_checkpoint(tmp_path / "nan" / "last.pt")["epoch"] == 1


def test_all_reduce_batchnorm_is_plain_batchnorm_in_one_process():
    torch.manual_seed(0)
    plain = torch.nn.BatchNorm2d(3)
    converted = trainer_mod.ddp.convert_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)), torch.device("cpu"))
    assert isinstance(converted[0], AllReduceBatchNorm)
    x = torch.randn(4, 3, 5, 2)
    torch.testing.assert_close(converted(x), plain(x))
    torch.testing.assert_close(converted[0].running_var, plain.running_var)
    assert np.isclose(float(converted[0].num_batches_tracked), 1)


def test_a_process_group_of_one_made_by_the_caller_runs_ddp(cache_dir, tmp_path, caplog):  # noqa: F811
    """benchmarks/gpu_check.py on a host with one GPU: it initialises a one-process group itself
    (NCCL refuses two ranks on one GPU) and the trainer must still wrap the model in DDP, with the
    single-process numbers (one rank: every collective is the identity)."""
    import logging

    import torch.distributed as dist

    plain = train(tiny_config("epochs=1", "data.batches_per_epoch=2"), cache_dir, tmp_path / "plain")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        with caplog.at_level(logging.INFO, logger="vireid.engine.trainer"):
            res = train(tiny_config("epochs=1", "data.batches_per_epoch=2"), cache_dir, tmp_path / "ddp")
        assert dist.is_initialized()                                   # the caller's group is left alone
    finally:
        dist.destroy_process_group()
    assert any("DDP: 1 processes" in r.getMessage() for r in caplog.records), caplog.text
    assert res.global_step == plain.global_step == 2
    for a, b in zip(_steps(tmp_path / "plain"), _steps(tmp_path / "ddp")):
        for name in ("id", "hctri", "pose", "kd", "total"):
            assert b[name] == pytest.approx(a[name], rel=1e-6), name
    ck = load_checkpoint(res.last)
    assert ck["world_size"] == 1 and len(ck["rng_ranks"]) == 1


def test_gather_batch_in_one_process_only_casts_to_float32():
    emb = torch.randn(4, 3, 2, dtype=torch.bfloat16, requires_grad=True)
    labels, mods = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    (got,), got_labels, got_mods = trainer_mod.ddp.gather_batch([emb], labels, mods)
    assert got.dtype == torch.float32 and torch.equal(got, emb.float())
    assert torch.equal(got_labels, labels) and torch.equal(got_mods, mods)
    got.sum().backward()
    assert torch.equal(emb.grad, torch.ones_like(emb))
