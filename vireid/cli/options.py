"""Options shared by several CLIs (click decorators), so each is declared once."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

import click

if TYPE_CHECKING:
    import torch

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def resolve_device_option(name: str) -> "torch.device":
    """``--device NAME`` resolved (:func:`vireid.engine.loop.resolve_device`: ``auto`` is CUDA
    when there is one), or a one-line click error naming the option: the one place every
    command turns a device it cannot use into its message."""
    from vireid.engine.loop import DeviceError, resolve_device

    try:
        return resolve_device(name)
    except DeviceError as exc:
        raise click.ClickException(f"--device: {exc}") from None


def rerank_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--rerank`` with ``--k1``, ``--k2`` and ``--lambda`` (the paper's 20, 6 and 0.3)."""
    options = [
        click.option("--rerank", is_flag=True,
                     help="Also rank by k-reciprocal re-ranking (Zhong et al., CVPR 2017), on cosine distances."),
        click.option("--k1", default=20, show_default=True, type=click.IntRange(1, None),
                     help="Re-ranking: size of the k-reciprocal neighbourhood."),
        click.option("--k2", default=6, show_default=True, type=click.IntRange(1, None),
                     help="Re-ranking: neighbours averaged by the local query expansion."),
        click.option("--lambda", "lambda_value", default=0.3, show_default=True, type=click.FloatRange(0.0, 1.0),
                     help="Re-ranking: weight of the original distance in the final distance."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def rerank_config(rerank: bool, k1: int, k2: int, lambda_value: float) -> Optional[Any]:
    """The :class:`~vireid.evaluation.rerank.RerankConfig` of the options, or None without ``--rerank``."""
    if not rerank:
        return None
    from vireid.evaluation.rerank import RerankConfig

    return RerankConfig(k1=k1, k2=k2, lambda_value=lambda_value)
