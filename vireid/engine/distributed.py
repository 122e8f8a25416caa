"""Multi-process training under ``torchrun``: process group, collectives, synchronised BatchNorm.

No launcher of our own: :func:`setup` reads torchrun's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``; ``MASTER_ADDR`` / ``MASTER_PORT`` via ``env://``) and
initialises the default process group with ``nccl`` on CUDA and ``gloo`` on a CPU. Without
those variables (or with ``WORLD_SIZE=1``) everything here is a no-op, so the trainer has
one code path. A process group initialised by the caller (e.g. a test spawning its own
processes) is used as it is and left for the caller to destroy; the trainer then runs
DistributedDataParallel even when that group has one process (how ``benchmarks/gpu_check.py``
exercises NCCL and the DDP wrapper on a host with one GPU, where NCCL refuses two ranks).

Collectives the trainer needs, all no-ops in one process:

* :func:`all_reduce_mean` of a float vector (the step's loss values: every rank logs and
  checks the same numbers, so the non-finite guard stops all ranks at the same step with
  the same message);
* :func:`broadcast_object` / :func:`all_gather_object` (rank 0's validation result, every
  rank's RNG state for the checkpoint);
* :func:`all_gather_with_grad`: the global batch's embeddings with gradients flowing back
  to each rank's own share; :func:`gather_batch` gives the hetero-center triplet loss the
  whole batch (the ``gather`` of :func:`vireid.losses.compute_losses`);
* :class:`AllReduceBatchNorm` / :func:`convert_sync_batchnorm`: BatchNorm over the global
  batch. CUDA uses :class:`torch.nn.SyncBatchNorm`; it refuses CPU tensors, so on a CPU
  (gloo) the statistics are all-reduced by a differentiable sum instead.

Gradient bookkeeping: DDP averages the ranks' gradients, i.e. it differentiates
``(1/N) sum_r L_r``. A loss computed from all-reduced (or all-gathered) tensors is the
same ``L`` on every rank; the backward of the sum all-reduces the incoming gradients, so
rank ``r``'s share receives ``sum_r' dL_r'/dx_r = N dL/dx_r`` and DDP's ``1/N`` brings it
back to the single-process gradient ``dL/dx_r``.
"""
from __future__ import annotations

import datetime
import inspect
import logging
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import Tensor, nn

from vireid.engine.errors import TrainError
from vireid.engine.loop import resolve_device

logger = logging.getLogger(__name__)


class DistributedError(RuntimeError):
    """The torchrun environment or the process-group settings are unusable; the message
    names the variable or key at fault."""


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run; ``world_size == 1`` is a plain single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None
    owned: bool = False            # this module initialised the process group (and destroys it)

    @property
    def enabled(self) -> bool:
        """DDP is on: several processes, or a process group the caller initialised (any size)."""
        return self.world_size > 1 or (self.backend is not None and not self.owned)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"environment variable {name}={raw!r} is not an integer (torchrun sets it)") from None


def env_world() -> DistContext:
    """``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` as torchrun sets them (defaults 0 / 1 / RANK)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise DistributedError(f"RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}: need 0 <= RANK < WORLD_SIZE "
                               "(launch with torchrun, which sets all three)")
    return DistContext(rank=rank, world_size=world, local_rank=local)


def default_backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def setup(device: torch.device, backend: str = "auto", timeout_minutes: float = 30.0) -> DistContext:
    """Join (or reuse) the default process group when torchrun started several processes.

    ``device`` is this rank's device (``cuda:LOCAL_RANK`` under torchrun with GPUs, which the
    caller has made current with :func:`torch.cuda.set_device`).
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        return DistContext(rank=rank, world_size=world, local_rank=_env_int("LOCAL_RANK", rank),
                           backend=str(dist.get_backend()), owned=False)
    ctx = env_world()
    if not ctx.enabled:
        return ctx
    if not dist.is_available():
        raise DistributedError(f"WORLD_SIZE={ctx.world_size} but this torch build has no torch.distributed")
    chosen = default_backend(device) if backend == "auto" else backend
    if chosen == "nccl" and device.type != "cuda":
        raise DistributedError(f"ddp.backend: nccl needs CUDA but this rank trains on {device}; use gloo or auto")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise DistributedError(f"WORLD_SIZE={ctx.world_size} but {name} is not set: launch with torchrun")
    kwargs: dict = {"backend": chosen, "init_method": "env://", "rank": ctx.rank, "world_size": ctx.world_size,
                    "timeout": datetime.timedelta(minutes=timeout_minutes)}
    if chosen == "nccl":
        kwargs["device_id"] = device
    dist.init_process_group(**kwargs)
    logger.info("process group: rank %d of %d (local rank %d), backend %s, device %s",
                ctx.rank, ctx.world_size, ctx.local_rank, chosen, device)
    return DistContext(rank=ctx.rank, world_size=ctx.world_size, local_rank=ctx.local_rank, backend=chosen,
                       owned=True)


def place_process(device_name: str, backend: str = "auto",
                  timeout_minutes: float = 30.0) -> Tuple[torch.device, DistContext]:
    """This process's device (``device`` of the configuration, :func:`vireid.engine.loop.resolve_device`;
    under torchrun with GPUs ``cuda:LOCAL_RANK``, made current) and its place in the run (:func:`setup`)."""
    device = resolve_device(device_name)
    if dist.is_available() and dist.is_initialized():
        world = dist.get_world_size()
    else:
        world = env_world().world_size
    if world > 1 and device.type == "cuda":
        local = env_world().local_rank
        if device_name.startswith("cuda:"):
            raise TrainError(f"device={device_name}: under torchrun every rank takes cuda:LOCAL_RANK; set device "
                             "to auto or cuda (choose GPUs with CUDA_VISIBLE_DEVICES)")
        if local >= torch.cuda.device_count():
            raise TrainError(f"LOCAL_RANK={local} but only {torch.cuda.device_count()} CUDA device(s) are visible: "
                             "use --nproc-per-node <= the number of GPUs")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    return device, setup(device, backend, timeout_minutes=timeout_minutes)


def wrap_model(model: nn.Module, device: torch.device, sync_bn: bool) -> nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel`; with synchronised
    BatchNorm (``sync_bn``) the running statistics are equal on every rank already, so DDP
    does not broadcast buffers. No ``find_unused_parameters`` (a graph traversal every step):
    every trainable parameter gets a gradient, the parameters a configuration leaves unused
    being frozen beforehand (:func:`vireid.engine.frozen.freeze_unused`)."""
    from torch.nn.parallel import DistributedDataParallel

    params = inspect.signature(DistributedDataParallel).parameters
    sync_key = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=False, **{sync_key: not sync_bn})


def teardown(ctx: DistContext) -> None:
    """Destroy the process group if :func:`setup` created it."""
    if ctx.owned and dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    """A process group of several processes is there (every collective here is a no-op without one)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


# ----------------------------------------------------------------------------- collectives
def barrier() -> None:
    if active():
        dist.barrier()


def all_reduce_mean(values: Tensor) -> Tensor:
    """The mean over ranks of a float tensor (a NaN or inf on any rank stays in the result)."""
    if not active():
        return values
    out = values.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def all_reduce_min(values: Tensor) -> Tensor:
    """The element-wise minimum over ranks of a float tensor (e.g. flags every rank must agree on)."""
    if not active():
        return values
    out = values.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.MIN)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (picklable objects)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any) -> List[Any]:
    """Every rank's ``obj``, in rank order."""
    if not active():
        return [obj]
    out: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward is the sum over ranks of the incoming gradients."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:  # type: ignore[override]
        out = x.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        out = grad.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out


def all_reduce_sum_with_grad(x: Tensor) -> Tensor:
    """Differentiable sum over ranks (identity in one process)."""
    return _AllReduceSum.apply(x) if active() else x


def all_gather_with_grad(x: Tensor) -> Tensor:
    """Concatenation over ranks (rank order) of equally shaped ``x``, differentiable with
    respect to this rank's ``x`` (see the module docstring for the gradient scale)."""
    if not active():
        return x
    world, rank = dist.get_world_size(), dist.get_rank()
    slots = x.new_zeros((world,) + tuple(x.shape))
    slots = slots.index_copy(0, torch.tensor([rank], device=x.device), x.unsqueeze(0))
    return all_reduce_sum_with_grad(slots).flatten(0, 1)


def all_gather_tensor(x: Tensor) -> Tensor:
    """Concatenation over ranks of equally shaped ``x`` (no gradient; labels and flags)."""
    if not active():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, 0)


def gather_batch(embeddings: Sequence[Tensor], labels: Tensor,
                 modality: Tensor) -> Tuple[List[Tensor], Tensor, Tensor]:
    """The global batch (rank order) of each of ``embeddings`` (cast to float32, as autocast may
    give bf16; differentiable with respect to this rank's share) and of ``labels`` /
    ``modality``: the :data:`vireid.losses.total.BatchGather` of ``ddp.gather_hctri``. In one
    process only the cast is done."""
    all_labels, all_mods = all_gather_tensor(labels), all_gather_tensor(modality)
    return [all_gather_with_grad(e.float()) for e in embeddings], all_labels, all_mods


# ----------------------------------------------------------------------------- BatchNorm
class AllReduceBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch (every rank's samples).

    Same parameters and buffers as the layer it replaces (checkpoints stay interchangeable).
    In training mode under a process group the per-channel sum, then the sum of squared
    deviations from the global mean, are all-reduced (two passes, float32) with a
    differentiable sum; the running statistics get the global mean and unbiased variance,
    as :class:`torch.nn.SyncBatchNorm` does. In eval mode or in one process it is plain BatchNorm.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least a 2D input [N, C, ...], got {input.dim()}D")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        if not (self.training and active()):
            return super().forward(input)
        c = input.shape[1]
        dims = [0] + list(range(2, input.dim()))
        shape = [1, c] + [1] * (input.dim() - 2)
        x = input.float()
        local_count = float(input.numel() // max(c, 1))
        stats = torch.cat([x.sum(dims), x.new_tensor([local_count])])
        stats = all_reduce_sum_with_grad(stats)
        count = stats[-1].detach()
        if float(count) < 2:
            raise ValueError(f"expected more than 1 value per channel over all ranks when training, got {int(count)}")
        mean = stats[:-1] / count
        centered = x - mean.view(shape)
        var = all_reduce_sum_with_grad((centered * centered).sum(dims)) / count
        y = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                unbiased = var.detach() * (count / (count - 1))
                self.running_mean.mul_(1 - momentum).add_(mean.detach().to(self.running_mean.dtype), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased.to(self.running_var.dtype), alpha=momentum)
        return y.to(input.dtype)


def _convert_all_reduce_bn(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, AllReduceBatchNorm):
        out = AllReduceBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                 module.track_running_stats)
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _convert_all_reduce_bn(child))
    return out


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm layer of ``model`` computing global-batch statistics: :class:`torch.nn.SyncBatchNorm`
    on CUDA, :class:`AllReduceBatchNorm` elsewhere. Returns the converted module (the same
    object for a model whose root is not a BatchNorm)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert_all_reduce_bn(model)
