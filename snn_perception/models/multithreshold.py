"""Multi-threshold integrate-and-fire neuron (Spiking-UNet paper, eqs. 5-8).

Each step the membrane integrates its input without leak, ``v ← v + I(t)``; then for each
threshold from high to low, if ``v > θᵢ`` the neuron fires that threshold's spike and subtracts
it (reset by subtraction keeps the residue, so the rate converges to the input). The step's
output is the sum of the fired thresholds, so one "spike" carries up to ``Σθ``: a graded spike
that still costs one accumulate per synapse downstream. With a single threshold this is the
plain IF neuron with reset by subtraction.

Multi-step form: the caller passes all T input currents ``[T, ...]`` at once (the layers around
the neuron are stateless and run over ``[T·B, ...]``); only this loop over T carries state.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch

from snn_perception.models import neuron_kernels

DEFAULT_THRESHOLDS: tuple[float, ...] = (2.0, 1.0, 0.5, 0.25)


def validate_thresholds(thresholds: Sequence[float], where: str = "thresholds") -> tuple[float, ...]:
    """Strictly decreasing positive values (the firing order is high to low)."""
    try:
        values = tuple(float(t) for t in thresholds)
    except (TypeError, ValueError):
        raise ValueError(f"{where}={thresholds!r}: expected a list of numbers, e.g. 2,1,0.5,0.25") from None
    if not values or any(t <= 0 for t in values):
        raise ValueError(f"{where}={values}: need at least one threshold, all positive")
    if any(a <= b for a, b in itertools.pairwise(values)):
        raise ValueError(f"{where}={values}: thresholds must be strictly decreasing (fired high to low)")
    return values


def mt_step(v: torch.Tensor, current: torch.Tensor, thresholds: Sequence[float]) -> torch.Tensor:
    """One step, in place on ``v``: integrate, fire high to low, subtract. Returns the output."""
    v.add_(current)
    out = torch.zeros_like(v)
    for th in thresholds:
        fired = (v > th).to(v.dtype).mul_(th)
        v.sub_(fired)
        out.add_(fired)
    return out


def binary_grid(thresholds: Sequence[float]) -> tuple[float, int] | None:
    """``(θ_min, 2^N − 1)`` when the thresholds are θ_min·(2^(N−1), …, 2, 1) with θ_min a power of
    two (the paper's optimal halving series, and any single threshold), else None.

    For such thresholds the high-to-low firing with strict ``v > θ`` emits the largest multiple
    k·θ_min (k ≤ 2^N − 1) that is strictly below v, i.e. ``k = clamp(ceil(v/θ_min) − 1, 0, K)``:
    four tensor passes per step instead of five per threshold.
    """
    th = tuple(float(t) for t in thresholds)
    low = th[-1]
    mantissa, _ = math.frexp(low)
    if mantissa != 0.5:
        return None
    n = len(th)
    if any(t != low * 2 ** (n - 1 - i) for i, t in enumerate(th)):
        return None
    return low, 2**n - 1


def mt_multistep(
    currents: torch.Tensor,
    thresholds: Sequence[float],
    v0: torch.Tensor | float | None = None,
    inplace: bool = False,
    defer_scale: bool = False,
    events: list[np.ndarray] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``currents`` ``[T, ...]`` through membranes starting at ``v0`` (tensor or scalar; 0 if None).

    Returns ``(outputs [T, ...], final membrane)``. ``inplace=True`` lets the fast path reuse the
    ``currents`` buffer for the outputs (callers whose currents are temporaries); otherwise
    ``currents`` is not modified. ``defer_scale=True`` leaves the outputs divided by
    :func:`output_scale` (the fast path's levels): the caller multiplies, e.g. in the same pass
    that counts the events. ``events``: where the fused CPU kernel counts the events per pixel
    as it fires (:func:`neuron_kernels.multi_threshold`), it appends that ``[H, W]`` map here and
    scales the outputs itself (no counting pass is needed); otherwise the list stays empty.
    """
    grid = binary_grid(thresholds)
    if grid is None:
        v = torch.zeros_like(currents[0]) if v0 is None else torch.zeros_like(currents[0]).add_(v0)
        out = torch.empty_like(currents)
        for t in range(currents.shape[0]):
            out[t] = mt_step(v, currents[t], thresholds)
        return out, v
    low, k_max = grid
    inplace = inplace and _dense(currents)
    if not (torch.is_grad_enabled() and currents.requires_grad):  # one fused pass on the CPU
        fused = neuron_kernels.multi_threshold(
            currents,
            low,
            k_max,
            v0,
            defer_scale,
            inplace,
            events is not None,
            lambda defer: _grid_steps(currents, low, k_max, v0, False, defer),
        )
        if fused is not None:
            if fused[2] is not None:
                events.append(fused[2])
            return fused[0], fused[1]
    return _grid_steps(currents, low, k_max, v0, inplace, defer_scale)


def _grid_steps(
    currents: torch.Tensor,
    low: float,
    k_max: int,
    v0: torch.Tensor | float | None,
    inplace: bool,
    defer_scale: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`mt_multistep`'s fast path with torch operations (any device and dtype)."""
    # state in units of θ_min, offset by −1 so that k = clamp(ceil(w), 0, K) is one ceil + one clamp
    scaled = currents.mul_(1.0 / low) if inplace else currents * (1.0 / low)  # exact: power of two
    w = torch.full_like(scaled[0], -1.0)
    if v0 is not None:
        w.add_(v0 * (1.0 / low) if isinstance(v0, torch.Tensor) else float(v0) / low)
    out = scaled if inplace else torch.empty_like(scaled)
    for t in range(scaled.shape[0]):
        k = out[t]
        w.add_(scaled[t])  # read before k (possibly the same memory) is overwritten
        torch.ceil(w, out=k)
        k.clamp_(0.0, float(k_max))
        w.sub_(k)
    if not defer_scale:
        out.mul_(low)
    return out, (w + 1.0).mul_(low)


def output_scale(thresholds: Sequence[float]) -> float:
    """What ``mt_multistep(..., defer_scale=True)`` leaves for the caller to multiply by."""
    grid = binary_grid(thresholds)
    return 1.0 if grid is None else grid[0]


def _dense(x: torch.Tensor) -> bool:
    """Every element stored once, without gaps (row-major, or channels-last ``[T, B, C, H, W]``
    from a channels-last ``[T·B, C, H, W]``), so outputs may overwrite the inputs step by step."""
    return x.is_contiguous() or (x.dim() == 5 and x.permute(0, 1, 3, 4, 2).is_contiguous())


def mt_constant(
    current: torch.Tensor,
    timesteps: int,
    thresholds: Sequence[float],
    v0: float | None = None,
    defer_scale: bool = False,
    events: list[np.ndarray] | None = None,
) -> torch.Tensor:
    """Outputs ``[T, ...]`` for a current that is the same every step (the static first layer)."""
    steps = current.unsqueeze(0).expand(timesteps, *current.shape)
    return mt_multistep(steps, thresholds, v0, defer_scale=defer_scale, events=events)[0]


class SpikingFlow(torch.autograd.Function):
    """Accumulated-spiking-flow straight-through: value = the SNN's mean output flow,
    gradient = that of ReLU at the mean input current ``z`` (pass where ``z > 0``)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(z > 0)
        return flow.detach().clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def spiking_flow(z: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    return SpikingFlow.apply(z, flow)
