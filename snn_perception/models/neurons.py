"""Spiking neurons used by snnTrans-DHZ: the adaptive-threshold LIF (ALIF) and a leaky readout.

The ALIF follows the official snnTrans-DHZ code exactly (charge ``v ← v + (x − v)/τ`` with the
membrane starting at 0 for every image, fire ``v ≥ θ``, and by default **no reset** after a spike),
because the published checkpoint was trained with those dynamics. A subtractive reset is
available for the ``paper`` variant. Training uses a sigmoid surrogate gradient (α = 4).

Tensors are multi-step: ``[T, ...]`` with the time axis first. Inference takes a fused in-place
loop; autograd takes a plain loop through :class:`SigmoidSpike`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

Reset = Literal["none", "subtract"]


class SigmoidSpike(torch.autograd.Function):
    """Heaviside forward (``x ≥ 0``), derivative of ``sigmoid(αx)`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        sig = torch.sigmoid(ctx.alpha * x)
        return grad * ctx.alpha * sig * (1.0 - sig), None


def spike_fn(x: torch.Tensor, alpha: float = 4.0) -> torch.Tensor:
    """Spike where ``x ≥ 0``, with the sigmoid surrogate gradient of slope ``alpha``."""
    return SigmoidSpike.apply(x, alpha)


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


class ALIF(nn.Module):
    """Leaky integrate-and-fire neuron layer with a learnable scalar threshold.

    State-dict entries match the official code (``v_threshold`` parameter, ``tau`` buffer), so the
    published checkpoint loads as is. The layer holds no state between calls: every call starts
    from ``v = 0``, which is what the official code's per-image ``reset_net`` amounts to.
    """

    def __init__(
        self, tau: float = 2.0, v_threshold: float = 0.25, reset: Reset = "none", alpha: float = 4.0
    ) -> None:
        super().__init__()
        if reset not in ("none", "subtract"):
            raise ValueError(f"ALIF reset must be 'none' or 'subtract', got {reset!r}")
        self.v_threshold = nn.Parameter(torch.tensor(float(v_threshold)))
        self.register_buffer("tau", torch.tensor(float(tau)))
        self.reset = reset
        self.alpha = alpha

    def extra_repr(self) -> str:
        return f"reset={self.reset!r}, alpha={self.alpha}"

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, ...]`` (0/1, same dtype) for input currents ``[T, ...]``."""
        if _needs_grad(x_seq, self.v_threshold):
            return self._forward_autograd(x_seq)
        return self._forward_inference(x_seq)

    def charge_(self, v: torch.Tensor, x: torch.Tensor, tmp: torch.Tensor) -> None:
        """In place ``v ← v + (x − v)/τ`` (inference), bit-identical to the official update.

        For τ a power of two, ``(x − v)/τ`` equals ``(x − v)·(1/τ)`` exactly, so the scaling is
        folded into the add (one pass fewer).
        """
        charge_(v, x, tmp, float(self.tau))

    def membranes(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Membrane potentials after charging at each step (no-reset dynamics only), ``[T, ...]``.

        Used by the fast paths that max-pool the membrane instead of the spikes: for
        ``s = [v ≥ θ]`` the pooled spike equals ``[maxpool(v) ≥ θ]`` exactly.
        """
        if self.reset != "none":
            raise RuntimeError("membranes() describes the no-reset dynamics only")
        out = torch.empty_like(x_seq)
        v = torch.zeros_like(x_seq[0])
        tmp = torch.empty_like(v)
        for t in range(x_seq.shape[0]):
            self.charge_(v, x_seq[t], tmp)
            out[t].copy_(v)
        return out

    def fire(self, v: torch.Tensor) -> torch.Tensor:
        """``v ≥ θ`` as 0/1 in ``v``'s dtype (an exact IEEE comparison, no subtraction)."""
        out = torch.empty_like(v)
        torch.ge(v, self.v_threshold.detach().to(v.dtype), out=out)
        return out

    def _forward_inference(self, x_seq: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x_seq)
        theta = self.v_threshold.detach().to(x_seq.dtype)
        v = first_charge(x_seq[0], float(self.tau))
        tmp = torch.empty_like(v)
        subtract = self.reset == "subtract"
        for t in range(x_seq.shape[0]):
            if t:
                self.charge_(v, x_seq[t], tmp)
            torch.ge(v, theta, out=out[t])
            if subtract:
                v.sub_(out[t] * theta)
        return out

    def _forward_autograd(self, x_seq: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x_seq[0])
        spikes = []
        for t in range(x_seq.shape[0]):
            v = v + (x_seq[t] - v) / self.tau
            s = spike_fn(v - self.v_threshold, self.alpha)
            if self.reset == "subtract":
                v = v - s * self.v_threshold
            spikes.append(s)
        return torch.stack(spikes)


def charge_(v: torch.Tensor, x: torch.Tensor, tmp: torch.Tensor, tau: float) -> None:
    """In place ``v ← v + (x − v)/τ`` without autograd; exact for any τ (see :meth:`ALIF.charge_`)."""
    torch.sub(x, v, out=tmp)
    mantissa, _ = math.frexp(tau)
    if mantissa == 0.5:  # τ = 2^k: multiplying by 1/τ is exact, so fold it into the add
        v.add_(tmp, alpha=1.0 / tau)
    else:
        tmp.div_(tau)
        v.add_(tmp)


def first_charge(x: torch.Tensor, tau: float) -> torch.Tensor:
    """The membrane after the first step from ``v = 0``: ``0 + (x − 0)/τ`` is exactly ``x/τ``.

    Saves allocating and zero-filling the state and one subtraction per layer.
    """
    mantissa, _ = math.frexp(tau)
    return x * (1.0 / tau) if mantissa == 0.5 else x / tau


def leaky_readout(x_seq: torch.Tensor, tau: float = 2.0) -> torch.Tensor:
    """Final membrane of a non-spiking leaky integrator over ``[T, ...]`` (v starts at 0)."""
    if _needs_grad(x_seq):
        v = torch.zeros_like(x_seq[0])
        for t in range(x_seq.shape[0]):
            v = v + (x_seq[t] - v) / tau
        return v
    v = first_charge(x_seq[0], tau)
    tmp = torch.empty_like(v)
    for t in range(1, x_seq.shape[0]):
        charge_(v, x_seq[t], tmp, tau)
    return v
