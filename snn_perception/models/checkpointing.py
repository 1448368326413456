"""Gradient checkpointing for spiking networks trained with BPTT.

BPTT through T steps stores every layer's activations for all T steps: about 0.4 GB per
256×256 image at T = 4 for snnTrans-DHZ, so training at 512×512 with T = 8 and a batch of 8
needs over 20 GB. A checkpointed stage keeps only its input and output and recomputes the
rest during the backward pass (about one more forward pass of compute). The neurons hold no
state between calls, so the recomputation is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

R = TypeVar("R")


def _norms(module: nn.Module) -> list[_BatchNorm]:
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def _stats(norms: list[_BatchNorm]) -> list[tuple[torch.Tensor, ...]]:
    return [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in norms]


@torch.no_grad()
def _load(norms: list[_BatchNorm], stats: list[tuple[torch.Tensor, ...]]) -> None:
    for m, (mean, var, count) in zip(norms, stats, strict=True):
        m.running_mean.copy_(mean)
        m.running_var.copy_(var)
        m.num_batches_tracked.copy_(count)


def replayed_running_stats(module: nn.Module) -> tuple[AbstractContextManager, AbstractContextManager]:
    """Context managers for the forward pass and for its recomputation in backward.

    BatchNorms in training mode update their running statistics, and this network also *reads*
    them in training (the ring of :class:`~snn_perception.models.dhz_blocks.BNAndPad`). So the
    recomputation starts from the statistics the forward pass started from (it then computes
    exactly the same values) and afterwards puts back what was there, so each batch is counted
    once, as without checkpointing.
    """
    norms = _norms(module)
    before: list[tuple[torch.Tensor, ...]] = []

    @contextmanager
    def forward() -> Iterator[None]:
        before[:] = _stats(norms)
        yield

    @contextmanager
    def recompute() -> Iterator[None]:
        now = _stats(norms)
        _load(norms, before)
        try:
            yield
        finally:
            _load(norms, now)

    return forward(), recompute()


def stage(owner: nn.Module, enabled: bool, fn: Callable[..., R], *args) -> R:
    """``fn(*args)``, checkpointed when ``enabled`` and gradients are being recorded.

    ``owner`` is the module whose BatchNorms ``fn`` uses (see :func:`replayed_running_stats`).
    """
    if not (enabled and owner.training and torch.is_grad_enabled()):
        return fn(*args)
    return checkpoint(fn, *args, use_reentrant=False, context_fn=lambda: replayed_running_stats(owner))
