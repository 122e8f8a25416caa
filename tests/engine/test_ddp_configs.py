"""Multi-process training beyond the default configuration, on 2-8 gloo processes with
torchrun's environment (the machinery of test_distributed.py):

* every Table IV row (configs/ablation_*.yaml as overrides on the tiny model) and
  ``loss.detach_teacher`` train under DDP: the parameters a configuration leaves without a
  gradient are frozen (vireid.engine.frozen), so DDP never waits for them;
* the gradient-share measurement (``grad_every``) keeps the ranks' collectives in step when
  one rank's term is zero;
* the same global batch on 1, 2, 4 or 8 processes gives the one-process weights after the
  first step (``ddp.batch: global``; 8 processes split identities across ranks), and
  ``ddp.batch: per_rank`` gives each process ``data.num_ids`` identities.
"""
from __future__ import annotations

from pathlib import Path
from typing import List

import pytest
import torch
import yaml

from tests.engine.test_distributed import ATOL, Job, _record_batches, _spawn, _steps
from tests.engine.test_trainer import cache_dir, tiny_config  # noqa: F401 - the module-scoped cache fixture
from tests.model.helpers import mixed_batch, small_config
from vireid.inputs.sampler import CrossModalitySampler
from vireid.model.checkpoint import load_checkpoint
from vireid.engine.errors import TrainError
from vireid.engine.frozen import check_gradients, freeze_unused, unused_parameters
from vireid.engine.runlog import read_log
from vireid.engine.train_data import batch_summary, global_sampler_config
from vireid.engine.trainer import train
from vireid.losses import LossConfig, compute_losses
from vireid.model import PoseVIReIDNet
from vireid.pose.joints import NUM_JOINTS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ROWS = sorted(p.stem for p in CONFIGS.glob("ablation_*.yaml"))


def _row_overrides(row: str) -> List[str]:
    """A Table IV row's own keys (what it sets over sysu.yaml) as overrides of the tiny config."""
    data = yaml.safe_load((CONFIGS / f"{row}.yaml").read_text())
    data.pop("inherit", None)
    out = []
    for section, values in data.items():
        for key, value in (values.items() if isinstance(values, dict) else [(None, values)]):
            out.append(f"{section}.{key}={yaml.safe_dump(value, default_flow_style=True).strip().splitlines()[0]}"
                       if key else f"{section}={value}")
    return out


@pytest.mark.parametrize("preset", ["baseline", "peb", "peb_pose", "full"])
@pytest.mark.parametrize("detach", [False, True], ids=["teacher-trained", "detach_teacher"])
def test_the_frozen_rule_names_exactly_the_parameters_without_a_gradient(preset, detach):
    torch.manual_seed(0)
    model = PoseVIReIDNet(small_config(preset)).train()
    loss_cfg = LossConfig(detach_teacher=detach)
    frozen = freeze_unused(model, loss_cfg)
    images, modality, labels = mixed_batch()
    targets = torch.rand(8, NUM_JOINTS, images.shape[2] // 4, images.shape[3] // 4)
    out = model(images, modality)
    compute_losses(out, labels, modality, targets, torch.ones(8, NUM_JOINTS), loss_cfg)["total"].backward()
    no_grad = sorted(n for n, p in model.named_parameters() if p.grad is None)
    assert no_grad == sorted(frozen) == sorted(unused_parameters(model, loss_cfg))
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    if preset == "peb":
        assert frozen and all(n.startswith("pose_branch.refinement.heatmaps.") for n in frozen if "hfc" not in n)
    if detach and preset == "full":
        assert any(n.startswith("hfc.") for n in frozen)


def test_a_parameter_the_rule_misses_fails_the_first_step_naming_it():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    model[0](torch.ones(1, 2)).sum().backward()                          # model[1] is never reached
    with pytest.raises(TrainError, match=r"2 trainable parameter\(s\) got no gradient in the first step: "
                                         r"1\.weight, 1\.bias"):
        check_gradients(model)
    model[1].requires_grad_(False)                                        # frozen: nothing to report
    check_gradients(model)


def test_every_table_iv_row_and_a_detached_teacher_train_on_two_processes(cache_dir, tmp_path):  # noqa: F811
    assert ROWS == ["ablation_baseline", "ablation_full", "ablation_peb", "ablation_peb_pose"]
    run = ["epochs=1", "data.batches_per_epoch=3", "ddp.timeout_minutes=0.5"]
    jobs: List[Job] = [(row, run + _row_overrides(row), str(tmp_path / row), None, None) for row in ROWS]
    jobs.append(("detach_teacher", run + ["loss.detach_teacher=true"], str(tmp_path / "detach"), None, None))
    ranks = _spawn(cache_dir, tmp_path, jobs, timeout_s=600)
    for name, _, out, _, _ in jobs:
        for r in ranks:
            assert r[name]["outcome"] == "ok" and r[name]["global_step"] == 3, (name, r[name])
        assert [s["step"] for s in _steps(Path(out))] == [1, 2, 3], name
    peb = load_checkpoint(tmp_path / "ablation_peb" / "last.pt")["config"]["model"]
    assert (peb["use_pose_branch"], peb["use_pose_loss"], peb["use_hfc"]) == (True, False, False)


def test_a_rank_with_a_zero_term_at_a_measured_step_keeps_the_collectives_in_step(cache_dir, tmp_path):  # noqa: F811
    """Rank 1's KD term is exactly 0 at step 1 (as the hetero-center term is on a rank whose
    share holds one identity): both ranks still differentiate the same terms, so the
    all-reduces inside those backward passes match and the run finishes (a mismatch hangs
    until ddp.timeout_minutes, or the bounded join fails the test)."""
    jobs: List[Job] = [("zero", ["epochs=1", "data.batches_per_epoch=2", "grad_every=1", "ddp.timeout_minutes=0.5"],
                        str(tmp_path / "zero"), None, (1, "kd", 0.0, 1))]
    ranks = _spawn(cache_dir, tmp_path, jobs, timeout_s=300)
    assert all(r["zero"]["outcome"] == "ok" and r["zero"]["global_step"] == 2 for r in ranks)
    grads = [r for r in read_log(tmp_path / "zero" / "log.jsonl") if r["kind"] == "grad"]
    assert [g["step"] for g in grads] == [1, 2] and grads[0]["modality_shared/kd"] > 0   # rank 0's own figures


# ----------------------------------------------------------------------------- what data.num_ids means
GLOBAL = ["epochs=1", "data.batches_per_epoch=1", "data.num_ids=4", "ddp.timeout_minutes=1"]   # 4 ids x (2 + 2)


@pytest.fixture(scope="module")
def one_process(cache_dir, tmp_path_factory):  # noqa: F811
    """The reference: one process, global batch 4 identities x (2 RGB + 2 IR), one step; its
    checkpoint and the batch it trained on."""
    seen: List[List[int]] = []
    real = CrossModalitySampler.__iter__
    CrossModalitySampler.__iter__ = _record_batches(seen)
    try:
        res = train(tiny_config(*GLOBAL), cache_dir, tmp_path_factory.mktemp("one") / "run")
    finally:
        CrossModalitySampler.__iter__ = real
    return {**load_checkpoint(res.last), "seen": seen}


def _assert_same_weights(got, want) -> None:
    assert got["model"].keys() == want["model"].keys()
    for k, v in got["model"].items():
        if v.is_floating_point():
            torch.testing.assert_close(v, want["model"][k], atol=ATOL, rtol=0, msg=lambda m, k=k: f"{k}: {m}")
        else:
            assert torch.equal(v, want["model"][k]), k


@pytest.mark.parametrize("world", [2, pytest.param(4, marks=pytest.mark.slow), pytest.param(8, marks=pytest.mark.slow)])
def test_the_same_global_batch_on_n_processes_gives_the_one_process_weights(cache_dir, tmp_path, one_process,  # noqa: F811
                                                                           world):
    jobs: List[Job] = [("global", GLOBAL, str(tmp_path / "global"), None, None)]
    if world == 2:      # per_rank: 2 identities on each of 2 processes is the same global batch
        jobs.append(("per_rank", GLOBAL + ["data.num_ids=2", "ddp.batch=per_rank"], str(tmp_path / "per_rank"),
                     None, None))
    ranks = _spawn(cache_dir, tmp_path, jobs, world=world, timeout_s=900)
    for name, _, out, _, _ in jobs:
        assert all(r[name]["outcome"] == "ok" for r in ranks), name
        # the ranks' shares together are the one-process batch (8 ranks: 1 RGB + 1 IR each)
        seen = [r[name]["seen"][0] for r in ranks]
        assert all(len(s) == 16 // world for s in seen)
        assert sorted(i for s in seen for i in s) == one_process["seen"][0]
        _assert_same_weights(load_checkpoint(Path(out) / "last.pt"), one_process)
    head = (tmp_path / "global" / "config.yaml").read_text().splitlines()[1]
    assert head == (f"# global batch 4 identities x (2 RGB + 2 IR) = 16 images, {16 // world} per process on "
                    f"{world} processes (ddp.batch: global); optim.lr 0.01 in force")
    if world == 2:
        assert "= 16 images, 8 per process on 2 processes (ddp.batch: per_rank)" in \
            (tmp_path / "per_rank" / "config.yaml").read_text()


def test_a_world_size_that_does_not_divide_the_global_batch_is_refused_naming_the_way_out():
    cfg = tiny_config("data.num_ids=4")                                    # 4 x 2 = 8 images per modality
    assert global_sampler_config(cfg, 8).num_ids == 4
    with pytest.raises(TrainError) as err:
        global_sampler_config(cfg, 3)
    message = str(err.value)
    assert "data.num_ids=4" in message and "3 processes" in message and "ddp.batch=per_rank" in message
    assert "\n" not in message
    per_rank = tiny_config("data.num_ids=4", "ddp.batch=per_rank")
    assert global_sampler_config(per_rank, 3).num_ids == 12
    assert batch_summary(per_rank, 3) == ("global batch 12 identities x (2 RGB + 2 IR) = 48 images, 16 per "
                                          "process on 3 processes (ddp.batch: per_rank); optim.lr 0.01 in force")
    assert batch_summary(cfg, 1) == "global batch 4 identities x (2 RGB + 2 IR) = 16 images; optim.lr 0.01 in force"
