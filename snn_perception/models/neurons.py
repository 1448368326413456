"""Spiking neurons used by snnTrans-DHZ: the adaptive-threshold LIF (ALIF) and a leaky readout.

The ALIF follows the official snnTrans-DHZ code exactly (charge ``v ← v + (x − v)/τ`` with the
membrane starting at 0 for every image, fire ``v ≥ θ``, and by default **no reset** after a spike),
because the published checkpoint was trained with those dynamics. A subtractive reset is
available for the ``paper`` variant. Training uses a sigmoid surrogate gradient (α = 4).

Tensors are multi-step: ``[T, ...]`` with the time axis first. Inference takes a fused in-place
loop; autograd takes a plain loop through :class:`SigmoidSpike`.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch
from torch import nn

from snn_perception.models import neuron_kernels
from snn_perception.models.counting import exact_total
from snn_perception.models.event_kernels import firing_total, firing_total_torch

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

    def firing_currents(self, timesteps: int, dtype: torch.dtype) -> tuple[float, ...]:
        """:func:`constant_current_thresholds` of this layer (τ = 2), cached without a sync.

        On a CPU the threshold's value is the key; elsewhere its version counter is (in-place
        changes, as by an optimiser or ``load_state_dict``, make a new entry).
        """
        p = self.v_threshold
        if p.device.type == "cpu":
            return constant_current_thresholds(float(p), 2.0, timesteps, dtype, p.dtype)
        key = (p._version, p.data_ptr(), timesteps, dtype)
        cached = self.__dict__.get("_firing_currents")
        if cached is None or cached[0] != key:
            cached = (key, constant_current_thresholds(float(p), 2.0, timesteps, dtype, p.dtype))
            self.__dict__["_firing_currents"] = cached
        return cached[1]

    def forward_counted(self, x_seq: torch.Tensor) -> tuple[torch.Tensor, int | None]:
        """:meth:`forward` and the number of spikes where the fused kernel counted them as it
        fired (:mod:`neuron_kernels`), else None (the caller counts the spikes)."""
        if not _needs_grad(x_seq, self.v_threshold):
            fused = self._fused(x_seq)
            if fused is not None:
                return fused
        return self(x_seq), None

    def _fused(self, x_seq: torch.Tensor) -> tuple[torch.Tensor, int] | None:
        theta = self.v_threshold.detach()
        return neuron_kernels.lif_steps(
            x_seq, theta, float(self.tau), self.reset == "subtract", self._forward_torch
        )

    def _forward_inference(self, x_seq: torch.Tensor) -> torch.Tensor:
        fused = self._fused(x_seq)
        return fused[0] if fused is not None else self._forward_torch(x_seq)

    def _forward_torch(self, x_seq: torch.Tensor) -> torch.Tensor:
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


def leaky_readout(
    x_seq: torch.Tensor, tau: float = 2.0, normalized: bool = False, steps: tuple[int, ...] | None = None
) -> torch.Tensor:
    """Final membrane of a non-spiking leaky integrator over ``[T, ...]`` (v starts at 0).

    ``normalized`` divides the membrane after ``t`` steps by ``1 − (1 − 1/τ)^t``, the sum of its
    weights, so it is a weighted *average* of the inputs at every ``t``: its scale no longer depends
    on T, which lets one set of weights be read out after any number of steps (anytime). ``steps``
    (1-based, each ≤ T) returns the read-out after each of those steps, stacked ``[len(steps), ...]``;
    the network is causal in time, so step ``t`` of a longer run equals a run of ``t`` steps.
    """
    wanted = set(steps or ())
    taken: dict[int, torch.Tensor] = {}
    if _needs_grad(x_seq) or wanted:
        v = torch.zeros_like(x_seq[0])
        for t in range(x_seq.shape[0]):
            v = v + (x_seq[t] - v) / tau
            if t + 1 in wanted:
                taken[t + 1] = v / readout_gain(tau, t + 1) if normalized else v
    else:
        v = first_charge(x_seq[0], tau)
        tmp = torch.empty_like(v)
        for t in range(1, x_seq.shape[0]):
            charge_(v, x_seq[t], tmp, tau)
    if wanted:
        return torch.stack([taken[t] for t in steps])
    return v / readout_gain(tau, x_seq.shape[0]) if normalized else v


def readout_gain(tau: float, t: int) -> float:
    """Sum of the weights a leaky integrator from ``v = 0`` gives its inputs after ``t`` steps."""
    return 1.0 - (1.0 - 1.0 / tau) ** t


# ----------------------------------------------------------------------------- fast no-reset kernels


def _fire_pool(
    x: torch.Tensor,
    theta: torch.Tensor,
    tau: float,
    timesteps: int,
    counts: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """No-reset neurons over ``[T*B, C, H, W]`` currents, pooled spikes ``[T*B, C, H/2, W/2]``;
    ``counts``, when given, receives the number of full-resolution spikes (a float64 tensor).

    One fused pass on the CPU (:func:`neuron_kernels.fire_pool`, counting for free), else
    :func:`_fire_pool_torch`."""

    def reference(x: torch.Tensor) -> tuple[torch.Tensor, int]:
        parts: list[torch.Tensor] = []
        out = _fire_pool_torch(x, theta, tau, timesteps, parts)
        return out, int(sum(float(p.sum(dtype=torch.float64)) for p in parts))

    fused = neuron_kernels.fire_pool(x, theta, tau, timesteps, reference)
    if fused is None:
        return _fire_pool_torch(x, theta, tau, timesteps, counts)
    if counts is not None:
        counts.append(torch.tensor(float(fused[1]), dtype=torch.float64))
    return fused[0]


def _fire_pool_torch(
    x: torch.Tensor,
    theta: torch.Tensor,
    tau: float,
    timesteps: int,
    counts: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """:func:`_fire_pool` with torch operations (any device and dtype).

    Pools the membrane, not the spikes: ``maxpool([v ≥ θ]) = [maxpool(v) ≥ θ]`` exactly.
    ``counts``, when given, receives the number of full-resolution spikes (exact tensors, no
    sync). The spikes are then made at full resolution and summed per 2×2 window into the
    output (0..4), which is counted and clamped to 1 once after the loop: the same pooled spikes
    for finite membranes (the currents here come from spikes: finite for finite weights), with
    as many operations per step as the membrane pooling.
    """
    steps = x.view(timesteps, -1, *x.shape[1:])
    v = first_charge(steps[0], tau)
    tmp = torch.empty_like(v)
    n, c, h, w = v.shape
    out = x.new_empty((timesteps * n, c, h // 2, w // 2)).contiguous(memory_format=_memory_format(x))
    full = torch.empty_like(v, dtype=torch.float32) if counts is not None else None
    windows = full is not None and 4 * out.numel() <= 1 << 24  # window sums add up exactly in float32
    if windows:
        q00, q01, q10, q11 = (full[..., i::2, j::2] for i in (0, 1) for j in (0, 1))
    for t in range(timesteps):
        if t:
            charge_(v, steps[t], tmp, tau)
        o = out[t * n : (t + 1) * n]
        if windows:
            torch.ge(v, theta, out=full)
            torch.add(q00, q01, out=o).add_(q10).add_(q11)
            continue
        torch.ge(_max_pool2x2(v), theta, out=o)
        if full is not None:
            counts.append(exact_total(torch.ge(v, theta, out=full)))
    if windows:
        counts.append(out.sum(dtype=torch.float32))
        out.clamp_(max=1.0)
    return out


def _fire_pool_constant(x: torch.Tensor, theta: torch.Tensor, tau: float, timesteps: int) -> torch.Tensor:
    """No-reset neurons fed the same current ``x`` ``[B, C, H, W]`` at every step, then a 2×2
    max-pool of the spikes, ``[T*B, C, H/2, W/2]``.

    With a constant input the membrane after t steps is ``v_t = f_t(x)`` element-wise, and f_t is
    non-decreasing in x *in float32 arithmetic*: ``v_1 = x/τ`` (τ = 2) and each later step is
    ``fl(v + (x − v)/2)`` where ``x − v`` is exact (Sterbenz: v lies in [x/2, x]), i.e. one
    rounding of ``(x + v)/2``, which increases with x. Hence ``maxpool(v_t) = f_t(maxpool(x))``
    exactly, and the neurons can run at a quarter of the resolution.
    """
    if tau != 2.0:  # the monotonicity argument above is for τ = 2 only
        v = torch.empty((timesteps, *x.shape), dtype=x.dtype, device=x.device)
        v[0] = first_charge(x, tau)
        tmp = torch.empty_like(x)
        for t in range(1, timesteps):
            v[t] = v[t - 1]
            charge_(v[t], x, tmp, tau)
        pooled = torch.stack([_max_pool2x2(vt) for vt in v])
        return torch.ge(pooled, theta).to(x.dtype).flatten(0, 1)
    xp = _max_pool2x2(x).contiguous(memory_format=_memory_format(x))
    v = first_charge(xp, tau)
    tmp = torch.empty_like(v)
    n = v.shape[0]
    out = xp.new_empty((timesteps * n, *v.shape[1:])).contiguous(memory_format=_memory_format(xp))
    for t in range(timesteps):
        if t:
            charge_(v, xp, tmp, tau)
        torch.ge(v, theta, out=out[t * n : (t + 1) * n])
    return out


def fire_pool_constant_counted(
    lif: ALIF, x: torch.Tensor, timesteps: int, count: bool, tau: float | None = None
) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    """:func:`_fire_pool_constant` of ``lif`` and, when ``count``, its full-resolution spike
    counts (:func:`constant_spike_totals`). On the CPU with τ = 2, one fused pass reads the
    currents once for both (:func:`neuron_kernels.fire_pool_constant`)."""
    tau = float(lif.tau) if tau is None else tau
    theta = lif.v_threshold.detach().to(x.dtype)
    if tau == 2.0 and x.dtype == torch.float32 and x.device.type == "cpu":
        currents = weights = None
        if count:
            currents, weights = _firing_tensors(lif.firing_currents(timesteps, x.dtype), x.dtype, x.device)

        def reference(x: torch.Tensor) -> tuple[torch.Tensor, float | None]:
            total = None if currents is None else float(firing_total_torch(x, currents, weights))
            return _fire_pool_constant(x, theta, tau, timesteps), total

        fused = neuron_kernels.fire_pool_constant(x, theta, timesteps, currents, weights, reference)
        if fused is not None:
            out, total = fused
            return out, ([torch.tensor(total, dtype=torch.float64)] if count else None)
    spikes = constant_spike_totals(lif, x, timesteps, tau) if count else None
    return _fire_pool_constant(x, theta, tau, timesteps), spikes


@functools.lru_cache(maxsize=256)
def constant_current_thresholds(
    theta: float, tau: float, timesteps: int, dtype: torch.dtype, theta_dtype: torch.dtype = torch.float32
) -> tuple[float, ...]:
    """``c_t``, t = 1..T: a no-reset neuron fed a constant current x fires at step t iff ``x ≥ c_t``.

    For τ = 2 the membrane ``f_t(x)`` is non-decreasing in x in floating point (see
    :func:`_fire_pool_constant`), so ``[f_t(x) ≥ θ]`` switches once, at ``c_t``: the smallest
    finite value of ``dtype`` that fires, found by bisection over the ordered bit patterns with
    the very arithmetic of the forward pass (``first_charge``, ``charge_``, ``≥ θ`` in ``dtype``).
    ``+inf`` where no finite current fires. Exact for finite currents (f_t(+inf) is NaN for t ≥ 2).
    """
    if tau != 2.0:
        raise ValueError("constant_current_thresholds relies on τ = 2 (monotone membrane)")
    ints = {
        torch.float32: torch.int32,
        torch.float64: torch.int64,
        torch.bfloat16: torch.int16,
        torch.float16: torch.int16,
    }
    itype = ints[dtype]
    bits = torch.iinfo(itype).bits
    imin = -(1 << (bits - 1))
    th = torch.tensor(theta, dtype=theta_dtype).to(dtype)

    def key(value: float) -> int:  # ordered integer of a float: monotone in the value
        b = int(torch.tensor([value], dtype=dtype).view(itype)[0])
        return b if b >= 0 else imin - b

    def values(keys: list[int]) -> torch.Tensor:
        return torch.tensor([k if k >= 0 else imin - k for k in keys], dtype=itype).view(dtype)

    def fires(keys: list[int]) -> list[bool]:
        """Entry t: does the current ``keys[t]`` fire at step t + 1?"""
        cur = values(keys)
        v = first_charge(cur, tau)
        tmp = torch.empty_like(v)
        out = torch.empty(timesteps, dtype=torch.bool)
        for t in range(timesteps):
            if t:
                charge_(v, cur, tmp, tau)
            out[t] = v[t] >= th
        return out.tolist()

    big = torch.finfo(dtype).max
    lo, hi = [key(-big)] * timesteps, [key(big)] * timesteps
    first, last = fires(lo), fires(hi)
    # invariant for open entries: lo does not fire, hi does
    done = [f or not g for f, g in zip(first, last, strict=True)]
    while True:
        open_ = {i for i in range(timesteps) if not done[i] and hi[i] - lo[i] > 1}
        if not open_:
            break
        mid = [(a + b) // 2 for a, b in zip(lo, hi, strict=True)]
        for i, f in enumerate(fires(mid)):
            if i in open_:
                if f:
                    hi[i] = mid[i]
                else:
                    lo[i] = mid[i]
    out = []
    for i in range(timesteps):
        if first[i]:
            out.append(-float(big))  # every finite current fires
        elif not last[i]:
            out.append(float("inf"))  # no finite current fires
        else:
            out.append(float(values([hi[i]])[0]))
    return tuple(out)


def constant_spike_totals(
    lif: ALIF, x: torch.Tensor, timesteps: int, tau: float | None = None
) -> list[torch.Tensor]:
    """Spike counts of no-reset ``lif`` neurons fed the constant current ``x`` for T steps, as
    tensors whose entries add up to the count (exact; no synchronisation).

    For τ = 2 a neuron fires at step t iff ``x ≥ c_t`` (:func:`constant_current_thresholds`):
    one comparison per distinct ``c_t`` instead of replaying the membrane, done chunk by chunk so
    that the comparison results stay in cache; otherwise the membrane is replayed. ``tau``: the
    layer's τ, when the caller has read it (saves a device synchronisation).
    """
    tau = float(lif.tau) if tau is None else tau
    # IEEE single/double only: CPUs convert bf16 with flush-to-zero in vector code but not in
    # scalar code, so the membrane of a bf16 subnormal current depends on where it sits
    if tau == 2.0 and x.dtype in (torch.float32, torch.float64):
        currents, weights = _firing_tensors(lif.firing_currents(timesteps, x.dtype), x.dtype, x.device)
        fused = firing_total(x, currents, weights)  # one pass on the CPU (models.event_kernels)
        if fused is not None:
            return [torch.tensor(fused, dtype=torch.float64)]
        return [firing_total_torch(x, currents, weights)]
    theta = lif.v_threshold.detach().to(x.dtype)
    full = torch.empty_like(x, dtype=torch.float32)
    v = first_charge(x, tau)
    tmp = torch.empty_like(v)
    parts = []
    for t in range(timesteps):
        if t:
            charge_(v, x, tmp, tau)
        parts.append(exact_total(torch.ge(v, theta, out=full)))
    return parts


_FIRING_TENSORS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _firing_tensors(
    currents: tuple[float, ...], dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct ``c_t`` as a ``[U, 1]`` tensor of ``dtype`` and how many steps use each (float64),
    made once per device (no transfer per frame)."""
    key = (currents, dtype, str(device))
    hit = _FIRING_TENSORS.get(key)
    if hit is None:
        uniq = list(dict.fromkeys(currents))
        if len(_FIRING_TENSORS) > 256:
            _FIRING_TENSORS.clear()
        hit = _FIRING_TENSORS[key] = (
            torch.tensor(uniq, dtype=dtype, device=device).view(-1, 1),
            torch.tensor([float(currents.count(c)) for c in uniq], dtype=torch.float64, device=device),
        )
    return hit


def _max_pool2x2(v: torch.Tensor) -> torch.Tensor:
    """2×2/stride-2 max-pool as three element-wise maxima of strided views (exact; several times
    faster than ``F.max_pool2d`` on CPU, which also computes indices)."""
    return torch.maximum(
        torch.maximum(v[..., 0::2, 0::2], v[..., 0::2, 1::2]),
        torch.maximum(v[..., 1::2, 0::2], v[..., 1::2, 1::2]),
    )


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return (
        torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    )
