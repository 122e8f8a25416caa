"""Counting the operations that make the host wait for the device, on any device (a CPU too).

``torch.cuda.set_sync_debug_mode`` needs CUDA; :class:`SyncRecorder` instead records, under a
dispatch mode, every operation whose result the host must read (``item``/``bool()`` ->
``aten._local_scalar_dense``, ``torch.equal``) or whose output size depends on the data
(``nonzero``, ``unique``, ``bincount``, ``masked_select``, boolean-mask indexing), and under a
function mode the tensor methods that hand values to Python (``tolist``, ``item``, ``bool()``,
``int()``, ``numpy``, ``cpu``), which on a CPU tensor dispatch nothing: each is a host-device
synchronisation when the tensors live on a GPU.
"""
from __future__ import annotations

from typing import Any, List

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

#: operations that synchronise whatever their arguments
SYNCING = {
    aten._local_scalar_dense, aten.nonzero, aten.nonzero_static, aten.argwhere, aten.masked_select,
    aten.bincount, aten._unique, aten._unique2, aten.unique_dim, aten.unique_consecutive,
    aten.unique_dim_consecutive, aten.equal, aten.repeat_interleave,
}
#: indexing operations that synchronise when an index is a boolean mask
MASK_INDEXED = {aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_}


def _has_mask(args: Any) -> bool:
    if isinstance(args, torch.Tensor):
        return args.dtype in (torch.bool, torch.uint8)
    if isinstance(args, (list, tuple)):
        return any(_has_mask(a) for a in args if a is not None)
    return False


#: tensor methods that give the host a tensor's values
READ_BACK = {torch.Tensor.tolist, torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.__int__,
             torch.Tensor.__float__, torch.Tensor.__index__, torch.Tensor.numpy, torch.Tensor.cpu}


class _Ops(TorchDispatchMode):
    def __init__(self, syncs: List[str]) -> None:
        super().__init__()
        self.syncs = syncs

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        packet = func.overloadpacket
        if packet in SYNCING or (packet in MASK_INDEXED and len(args) > 1 and _has_mask(args[1])):
            self.syncs.append(str(func))
        return func(*args, **(kwargs or {}))


class _Methods(TorchFunctionMode):
    def __init__(self, syncs: List[str]) -> None:
        super().__init__()
        self.syncs = syncs

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if func in READ_BACK:
            self.syncs.append(f"Tensor.{func.__name__}")
        return func(*args, **(kwargs or {}))


class SyncRecorder:
    """``with SyncRecorder() as rec: ...``; ``rec.syncs`` lists the synchronising operations run
    (forward and, when the block runs it, backward)."""

    def __init__(self) -> None:
        self.syncs: List[str] = []
        self._modes = (_Methods(self.syncs), _Ops(self.syncs))

    def __enter__(self) -> "SyncRecorder":
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
