"""Fused spiking neurons on the CPU: charge, fire, pool and count in one pass over the currents.

In eager PyTorch one neuron step is several passes over the layer: the ALIF of snnTrans-DHZ
writes ``x − v`` to a temporary, adds it to ``v``, compares with θ and, where a pool follows,
pools the membrane; the Spiking-UNet's multi-threshold neuron adds, rounds up, clamps and
subtracts. Counting the spikes was one more pass. Measured on 2 threads (T = 4), the neurons took
a third of a dhz frame at 512² (≈ 90 of 260 ms) and more than half of a Spiking-UNet frame at
256² (95 of 177 ms). These kernels keep a block of membranes in cache for all T steps, write
the spikes (pooled where a pool follows) and count them as they go, per pixel where the
segmenter's border-exact fan-out needs it: the currents are read once, and counting is nearly
free.

Same numbers as the torch path, to the bit: the same float32 operations in the same order
(products by 1/τ or 1/θ_min are exact for powers of two; ``v ≥ θ``; a subtractive reset
subtracts θ where a spike fired; NaN propagates as torch's ``maximum`` and ``clamp`` do). Each
kernel's first call is checked against torch (spikes, counts, final membranes), as the counting
kernels are (:mod:`event_kernels`, whose switch ``SNN_EVENT_KERNELS=torch``, build and fallback
rules apply here too): where a kernel does not fit (autograd, not float32, a GPU, odd sizes,
other layouts, τ or θ_min not a power of two, a membrane tensor as initial state) or cannot run,
the caller's torch path runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from snn_perception.models import event_kernels as ek

#: neurons per thread below which a layer is not split over torch's threads
_MIN_SPLIT = 1 << 16


def compile_kernels(njit: Callable) -> dict[str, Callable]:
    """The neuron kernels, compiled by :mod:`event_kernels` with its ``njit`` (disk cache)."""

    @njit(nogil=True, cache=True)
    def lif(x, o, lo, hi, theta, inv, subtract):  # x, o [T, M]; neurons lo..hi; → spikes
        steps = x.shape[0]
        block = 2048
        v = np.empty(block, x.dtype)
        total = 0
        for a in range(lo, hi, block):
            n = min(block, hi - a)
            for t in range(steps):
                xt, ot = x[t, a : a + n], o[t, a : a + n]
                k = 0
                for i in range(n):
                    vi = xt[i] * inv if t == 0 else v[i] + (xt[i] - v[i]) * inv
                    s = vi >= theta
                    ot[i] = s
                    k += s
                    v[i] = vi - theta if (subtract and s) else vi
                total += k
        return total

    @njit(nogil=True, cache=True)
    def fire_pool(x, o, lo, hi, channels, theta, inv):  # x [T, 2R, L], o [T, R, L/2]; rows lo..hi
        steps, length = x.shape[0], x.shape[2]
        va = np.empty(length, x.dtype)
        vb = np.empty(length, x.dtype)
        sa = np.empty(length, np.bool_)
        sb = np.empty(length, np.bool_)
        total = 0
        for r in range(lo, hi):
            for t in range(steps):
                xa, xb = x[t, 2 * r], x[t, 2 * r + 1]
                k = 0
                for i in range(length):
                    a = xa[i] * inv if t == 0 else va[i] + (xa[i] - va[i]) * inv
                    b = xb[i] * inv if t == 0 else vb[i] + (xb[i] - vb[i]) * inv
                    va[i], vb[i] = a, b
                    sa[i], sb[i] = a >= theta, b >= theta
                    k += sa[i] + sb[i]
                total += k
                row = o[t, r]
                for q in range(length // (2 * channels)):
                    i0 = 2 * q * channels
                    for c in range(channels):  # the pool of the spikes: any of the four fired
                        i, j = i0 + c, i0 + channels + c
                        row[q * channels + c] = sa[i] | sa[j] | sb[i] | sb[j]
        return total

    @njit(nogil=True, cache=True)
    def fire_pool_constant(x, o, lo, hi, channels, theta, currents, steps_at):
        # x [2R, L] fed at every step, o [T, R, L/2]; τ = 2; → Σ_j steps_at[j]·#[x ≥ currents[j]]
        steps, length = o.shape[0], x.shape[1]
        half = length // 2
        half_ = np.float32(0.5)  # float32 arithmetic throughout, as torch's
        p = np.empty(half, x.dtype)
        v = np.empty(half, x.dtype)
        total = 0
        for r in range(lo, hi):
            xa, xb = x[2 * r], x[2 * r + 1]
            for j in range(currents.shape[0]):
                c_j = currents[j]
                k = 0
                for i in range(length):
                    k += (xa[i] >= c_j) + (xb[i] >= c_j)
                total += k * steps_at[j]
            for q in range(half // channels):
                i0 = 2 * q * channels
                for c in range(channels):  # the max of the currents, NaN-propagating as torch's
                    m = xa[i0 + c]
                    for z in (xa[i0 + channels + c], xb[i0 + c], xb[i0 + channels + c]):
                        m = z if (z > m or z != z) else m
                    p[q * channels + c] = m
            for t in range(steps):
                row = o[t, r]
                for i in range(half):
                    vi = p[i] * half_ if t == 0 else v[i] + (p[i] - v[i]) * half_
                    v[i] = vi
                    row[i] = vi >= theta
        return total

    @njit(nogil=True, cache=True, inline="always")
    def level(w, x, inv, k_max, scale):  # one step of one neuron: (new state, output)
        wi = w + x * inv
        k = np.ceil(wi)
        k = np.float32(0.0) if k < np.float32(0.0) else (k_max if k > k_max else k)  # NaN stays NaN
        return wi - k, k * scale

    @njit(nogil=True, cache=True, inline="always")
    def pixel_events(row, ev, first, channels):  # ev[first + p] += non-zero entries of pixel p
        for p in range(row.shape[0] // channels):
            e = 0
            for c in range(channels):
                e += row[p * channels + c] != 0
            ev[first + p] += e

    @njit(nogil=True, cache=True)
    def multi_threshold(x, o, w_end, ev, lo, hi, inv, w0, k_max, scale, channels):
        # x [T or 1, M] currents, o [T, M] levels·scale, w_end [M] final membrane + 1 (units of
        # θ_min); neurons lo..hi; state w offset by −1: k = clamp(ceil(w), 0, K). channels > 0:
        # ev [M/channels] += events per pixel (channels-last; lo, hi multiples of channels)
        steps, rows = o.shape[0], x.shape[0]
        one = np.float32(1.0)
        block = 2048 if channels == 0 else channels * max(1, 2048 // channels)
        w = np.empty(block, o.dtype)
        for a in range(lo, hi, block):
            n = min(block, hi - a)
            for i in range(n):
                w[i] = w0
            for t in range(steps):
                xt, ot = x[t % rows, a : a + n], o[t, a : a + n]  # never x's memory: see below
                for i in range(n):
                    w[i], ot[i] = level(w[i], xt[i], inv, k_max, scale)
                if channels:  # counted while the block is in cache
                    pixel_events(ot, ev, a // channels, channels)
            for i in range(n):
                w_end[a + i] = w[i] + one
        return 0

    @njit(nogil=True, cache=True)
    def multi_threshold_inplace(xo, w_end, ev, lo, hi, inv, w0, k_max, scale, channels):
        # multi_threshold with the outputs written over the currents: one array, so that the
        # loop vectorises (with two arrays that alias, LLVM's overlap check falls back to
        # scalar code: 10× slower)
        steps = xo.shape[0]
        one = np.float32(1.0)
        block = 2048 if channels == 0 else channels * max(1, 2048 // channels)
        w = np.empty(block, xo.dtype)
        for a in range(lo, hi, block):
            n = min(block, hi - a)
            for i in range(n):
                w[i] = w0
            for t in range(steps):
                row = xo[t, a : a + n]
                for i in range(n):
                    w[i], row[i] = level(w[i], row[i], inv, k_max, scale)
                if channels:
                    pixel_events(row, ev, a // channels, channels)
            for i in range(n):
                w_end[a + i] = w[i] + one
        return 0

    return {
        "lif": lif,
        "fire_pool": fire_pool,
        "fire_pool_constant": fire_pool_constant,
        "multi_threshold": multi_threshold,
        "multi_threshold_inplace": multi_threshold_inplace,
    }


KINDS = ("lif", "fire_pool", "fire_pool_constant", "multi_threshold", "multi_threshold_inplace")


def _inverse(tau: float) -> float | None:
    """``1/τ`` where multiplying by it is exact (τ a power of two), else None."""
    mantissa, _ = math.frexp(tau)
    return 1.0 / tau if mantissa == 0.5 and tau > 0 else None


def _checked(kind: str, run: Callable[[], tuple], reference: Callable[[], tuple]) -> tuple | None:
    """``run()`` once the kernel is trusted; on its first call, ``run()`` compared with
    ``reference()`` (tensors equal, counts equal), the kernel dropped for torch if they differ."""
    state = ek._state.get(kind)
    if state is False:
        return None
    if state:
        return run()

    def first() -> tuple[tuple, bool, str]:
        got, want = run(), reference()
        ok = torch.equal(got[0], want[0]) and got[1] == want[1]
        return got, ok, f"its spikes or count ({got[1]}) differ from torch's ({want[1]})"

    return ek._first_call(kind, first)


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal element for element, NaN where the other is NaN (``torch.equal`` says NaN ≠ NaN)."""
    if a.shape != b.shape:
        return False
    nan_a = torch.isnan(a)
    if not torch.equal(nan_a, torch.isnan(b)):
        return False
    inf = float("inf")
    return torch.equal(a.nan_to_num(0.0, inf, -inf), b.nan_to_num(0.0, inf, -inf))


def _fits(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and x.numel() > 0


def lif_steps(
    x_seq: torch.Tensor, theta: torch.Tensor, tau: float, subtract: bool, reference: Callable
) -> tuple[torch.Tensor, int] | None:
    """Spikes ``[T, ...]`` (0/1 float32, ``x_seq``'s layout) of ALIF neurons fed ``x_seq`` and
    their number, or None where no kernel fits. ``reference(x_seq)``: the torch forward."""
    inv = _inverse(tau)
    if not _fits(x_seq) or inv is None or x_seq.dim() < 2:
        return None
    flat = ek._memory_order(x_seq)
    if flat is None or (
        x_seq.shape[0] > 1 and x_seq.stride(0) != x_seq[0].numel()
    ):  # steps: consecutive blocks
        return None
    out = torch.empty_like(x_seq)
    out_flat = ek._memory_order(out)
    if out_flat is None:
        return None
    th = np.float32(float(theta))
    steps = x_seq.shape[0]
    x2, o2 = flat.view(steps, -1).numpy(), out_flat.view(steps, -1).numpy()

    def run() -> tuple[torch.Tensor, int]:
        kernel, inv32 = ek._kernels["lif"], np.float32(inv)
        spikes = ek.split_sum(
            lambda lo, hi: kernel(x2, o2, lo, hi, th, inv32, subtract), x2.shape[1], _MIN_SPLIT
        )
        return out, int(spikes)

    def ref() -> tuple[torch.Tensor, int]:
        s = reference(x_seq)
        return s, int(s.sum(dtype=torch.float64))

    return _checked("lif", run, ref)


def _layout(x: torch.Tensor) -> bool | None:
    """True for channels-last, False for planar (NCHW), None for other layouts; channels-last
    first where both hold (size-1 dimensions), as the torch paths choose their outputs'."""
    if x.is_contiguous(memory_format=torch.channels_last):
        return True
    return False if x.is_contiguous() else None


def _rows(x: torch.Tensor, steps: int | None, channels_last: bool) -> tuple[np.ndarray, int]:
    """``x`` ``[N, C, H, W]``, stored in the given layout, as rows of neurons ``[(T,) rows, L]``
    and the channel stride within a row (C for channels-last, 1 for planar)."""
    c, w = x.shape[1], x.shape[3]
    view, channels = (x.permute(0, 2, 3, 1), c) if channels_last else (x, 1)
    a = view.numpy()
    rows = a.size // (w * channels) if steps is None else a.size // (steps * w * channels)
    shape = (rows, w * channels) if steps is None else (steps, rows, w * channels)
    return a.reshape(shape), channels


def fire_pool(
    x: torch.Tensor, theta: torch.Tensor, tau: float, timesteps: int, reference: Callable
) -> tuple[torch.Tensor, int] | None:
    """No-reset neurons over ``[T*B, C, H, W]`` currents, 2×2-pooled spikes ``[T*B, C, H/2, W/2]``
    (the input's layout) and the number of full-resolution spikes; None where no kernel fits.
    ``reference(x)``: the torch path's ``(pooled spikes, count)``."""
    inv = _inverse(tau)
    n, c, h, w = x.shape
    cl = _layout(x)
    if not _fits(x) or inv is None or h % 2 or w % 2 or n % timesteps or cl is None:
        return None
    fmt = torch.channels_last if cl else torch.contiguous_format
    out = torch.empty((n, c, h // 2, w // 2), dtype=x.dtype).contiguous(memory_format=fmt)
    (x3, channels), (o3, _) = _rows(x, timesteps, cl), _rows(out, timesteps, cl)
    th = np.float32(float(theta))

    def run() -> tuple[torch.Tensor, int]:
        kernel, inv32 = ek._kernels["fire_pool"], np.float32(inv)
        rows = max(1, _MIN_SPLIT // x3.shape[2])  # output rows per part
        spikes = ek.split_sum(lambda lo, hi: kernel(x3, o3, lo, hi, channels, th, inv32), o3.shape[1], rows)
        return out, int(spikes)

    return _checked("fire_pool", run, lambda: reference(x))


def fire_pool_constant(
    x: torch.Tensor,
    theta: torch.Tensor,
    timesteps: int,
    currents: torch.Tensor | None,
    weights: torch.Tensor | None,
    reference: Callable,
) -> tuple[torch.Tensor, float | None] | None:
    """No-reset neurons (τ = 2) fed ``x`` ``[B, C, H, W]`` at every step, 2×2-pooled spikes
    ``[T*B, C, H/2, W/2]``, and, given the layer's step thresholds ``currents`` and ``weights``
    (:func:`neurons.constant_current_thresholds`), the number of full-resolution spikes
    ``Σ_j weights[j]·#[x ≥ currents[j]]``, else None. None where no kernel fits.
    ``reference(x)``: the torch path's ``(pooled spikes, count or None)``."""
    b, c, h, w = x.shape
    cl = _layout(x)
    if not _fits(x) or h % 2 or w % 2 or cl is None:
        return None
    fmt = torch.channels_last if cl else torch.contiguous_format
    out = torch.empty((timesteps * b, c, h // 2, w // 2), dtype=x.dtype).contiguous(memory_format=fmt)
    (x2, channels), (o3, _) = _rows(x, None, cl), _rows(out, timesteps, cl)
    th = np.float32(float(theta))
    cur = np.zeros(0, np.float32) if currents is None else currents.reshape(-1).numpy()
    # how many steps use each current: small integers (float64 in the counter's convention)
    steps_at = np.zeros(0, np.int64) if weights is None else weights.reshape(-1).numpy().astype(np.int64)

    def run() -> tuple[torch.Tensor, float | None]:
        kernel = ek._kernels["fire_pool_constant"]
        rows = max(1, _MIN_SPLIT // x2.shape[1])  # output rows per part
        total = ek.split_sum(
            lambda lo, hi: kernel(x2, o3, lo, hi, channels, th, cur, steps_at), o3.shape[1], rows
        )
        return out, (None if weights is None else float(total))

    return _checked("fire_pool_constant", run, lambda: reference(x))


def _steps_like(c0: torch.Tensor, steps: int) -> torch.Tensor:
    """An empty ``[steps, *c0.shape]`` whose every step is stored as ``c0`` is (same layout)."""
    order = sorted(range(c0.dim()), key=lambda d: -c0.stride(d))
    dense = torch.empty((steps, *[c0.shape[d] for d in order]), dtype=c0.dtype)
    return dense.permute(0, *[1 + order.index(d) for d in range(c0.dim())])


def multi_threshold(
    currents: torch.Tensor,
    low: float,
    k_max: int,
    v0: torch.Tensor | float | None,
    defer_scale: bool,
    inplace: bool,
    events: bool,
    reference: Callable[[bool], tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None] | None:
    """Multi-threshold neurons with thresholds θ_min·(2^(N−1), …, 1) (``k_max = 2^N − 1``) fed
    ``currents`` ``[T, ...]`` (a step-expanded tensor, stride 0 over T, for a constant current),
    from the membrane ``v0`` (a number, or None for 0), as :func:`multithreshold.mt_multistep`'s
    fast path runs them: ``(outputs, final membrane, events)``, or None where no kernel fits.

    ``events``: count the events (non-zero outputs) per pixel as they are made, for channels-last
    ``[T, B, C, H, W]`` currents: ``events`` is then ``[H, W]`` float64 (summed over T, B and C)
    and the outputs are scaled whatever ``defer_scale`` says (no counting pass will scale them);
    elsewhere it is None and ``defer_scale`` leaves the outputs in units of θ_min. ``inplace``:
    the outputs may overwrite ``currents``. ``reference(defer_scale)``: the torch path's
    ``(outputs, final membrane)``, without touching ``currents``."""
    inv = _inverse(low)
    if not _fits(currents) or inv is None or currents.dim() < 2 or isinstance(v0, torch.Tensor):
        return None
    steps, c0 = currents.shape[0], currents[0]
    x = ek._memory_order(c0)
    if x is None:
        return None
    if currents.stride(0) == 0:
        x2 = x.view(1, -1).numpy()
        inplace = False
    else:
        flat = ek._memory_order(currents)
        if flat is None or (steps > 1 and currents.stride(0) != c0.numel()):  # steps: consecutive blocks
            return None
        x2 = flat.view(steps, -1).numpy()
    kind = "multi_threshold_inplace" if inplace else "multi_threshold"
    state = ek._state.get(kind)
    if state is False:
        return None
    w_end = torch.empty_like(c0, memory_format=torch.preserve_format)
    w2 = ek._memory_order(w_end)
    if w2 is None:
        return None
    # per-pixel events where every pixel's channels are consecutive in memory (channels-last)
    count = events and c0.dim() == 4 and c0.is_contiguous(memory_format=torch.channels_last)
    channels = int(c0.shape[1]) if count else 0
    pixel_counts = np.zeros(x2.shape[1] // channels if count else 0, np.int64)
    defer = defer_scale and not count
    w0 = float(torch.full((1,), -1.0).add_(0.0 if v0 is None else float(v0) / low))  # as torch adds it
    args = (np.float32(inv), np.float32(w0), np.float32(k_max), np.float32(1.0 if defer else low), channels)

    def run(target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
        """Outputs into ``target`` (in place: it holds the currents) or a new tensor."""
        out = _steps_like(c0, steps) if target is None else target
        o2 = ek._memory_order(out).view(steps, -1).numpy()
        w_flat = w2.numpy()
        if target is None:
            kernel, arrays = ek._kernels["multi_threshold"], (x2, o2, w_flat, pixel_counts)
        else:
            kernel, arrays = ek._kernels["multi_threshold_inplace"], (o2, w_flat, pixel_counts)
        ek.split_sum(lambda lo, hi: kernel(*arrays, lo, hi, *args), o2.shape[1], _MIN_SPLIT, max(1, channels))
        per_pixel = None
        if count:  # [B, H, W] in memory order (channels-last), summed over the batch
            per_pixel = pixel_counts.reshape(c0.shape[0], c0.shape[2], c0.shape[3]).sum(0).astype(np.float64)
        return out, w_end.mul_(low), per_pixel

    if state:
        return run(currents if inplace else None)

    def check() -> tuple[tuple, bool, str]:  # in place on a copy, so currents stay for torch
        got, want = run(currents.clone() if inplace else None), reference(defer)
        ok = same_values(got[0], want[0]) and same_values(got[1], want[1])
        if count:  # the events the counting pass would find in the same outputs
            ok = ok and np.array_equal(
                got[2], ek.events_per_pixel_torch(want[0].flatten(0, 1)).double().numpy()
            )
        if ok and inplace:
            got = (currents.copy_(got[0]), *got[1:])
        return got, ok, "its outputs, final membranes or events differ from torch's"

    return ek._first_call(kind, check)


def warm() -> None:
    """Compile (or load from Numba's cache) and check the neuron kernels, on tiny tensors through
    the neurons' own entry points (so the check compares with their torch paths)."""
    from snn_perception.models import neurons  # the torch paths (they import this module)
    from snn_perception.models.multithreshold import mt_constant, mt_multistep  # it imports this

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 6, generator=g).contiguous(memory_format=torch.channels_last)
    cell = neurons.ALIF().requires_grad_(False)
    with torch.no_grad():
        cell(x.view(2, 1, 3, 4, 6))
        neurons._fire_pool(x, cell.v_threshold, 2.0, 2, [])
        neurons.fire_pool_constant_counted(cell, x[:1], 2, count=True)
        mt_multistep(x.view(2, 1, 3, 4, 6).clone(), (0.5, 0.25), 0.125, inplace=True, events=[])
        mt_constant(x[:1], 2, (0.5, 0.25), defer_scale=True, events=[])
