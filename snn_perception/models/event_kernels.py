"""Fused event counting on the CPU: a graded spike tensor's events and SOPs in one pass.

Counting graded spikes in eager PyTorch takes two passes and a temporary (``sign`` writes a 0/1
mask, ``sum`` reads it back): on the Spiking-UNet at 256², T=4, that was 14 ms of a 80 ms frame,
most of what counting cost. PyTorch's one-pass alternatives (``count_nonzero``, ``ne().sum()``,
``vector_norm(ord=0)``, ``histc``) are 5-25× slower still on the CPU. A Numba kernel reads each
value once and keeps nothing, at the speed of a plain ``sum`` (0.54 vs 1.54 ms on a
4×96×128² channels-last tensor, 2 threads), and weights each pixel's count by its consumers'
border-exact fan-out as it goes: one call per spike tensor gives the events and every consumer's
SOPs as host numbers (exact: integers below 2^53 in float64), with no per-layer torch work.

The neuron kernels of :mod:`neuron_kernels` are compiled, checked and switched with these (one
Numba set-up, one switch, one status).

Numba is an accelerator, never a requirement: without it (or with ``NUMBA_DISABLE_JIT``,
``SNN_EVENT_KERNELS=torch``, or a threading layer that will not load) the torch path gives the
same numbers, and the first kernel
call of each layout is checked against it. The threading layer is pinned to a thread-safe one
(OpenMP or TBB): a ROS process may count in two engines' worker threads at once, and Numba's own
``workqueue`` layer aborts the process on concurrent launches.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

LOG = logging.getLogger(__name__)

_lock = threading.Lock()
#: ``reached`` splits inputs of at least 2·_MIN_SPLIT elements over up to _MAX_SPLIT threads
#: (torch's thread count): Numba's parallel loop does not vectorise this kernel, Python threads
#: running the serial one (it releases the GIL) do: 4M floats 3.7 → 2.5 ms on 2 threads, cold
_MIN_SPLIT = 1 << 18
_MAX_SPLIT = 4
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_kernels: dict[str, Callable] | None = None
_KINDS = (  # the last five: neuron_kernels
    "planar",
    "channels_last",
    "reached",
    "lif",
    "fire_pool",
    "fire_pool_constant",
    "multi_threshold",
    "multi_threshold_inplace",
)  # last 3: neuron_kernels
#: kernel → True once checked against torch; False once it failed (torch from then on)
_state: dict[str, bool] = {}


def events_per_pixel_torch(s: torch.Tensor) -> torch.Tensor:
    """The reference: non-zero entries of ``s`` (≥ 0) per pixel, summed over the leading
    dimensions, float32 (exact: at most N·C per pixel). Any device, dtype and layout."""
    mask = torch.sign(s)  # 0 and 1 are exact in any float type
    dims = tuple(range(s.dim() - 2))
    return mask.sum(dim=dims, dtype=torch.float32) if dims else mask.to(torch.float32)


def weighted_events_torch(s: torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The reference for :func:`weighted_events`, from :func:`events_per_pixel_torch`."""
    pixels = events_per_pixel_torch(s).to(torch.float64)
    r, c = torch.from_numpy(rows).to(s.device), torch.from_numpy(cols).to(s.device)
    return ((r @ pixels) * c).sum(1).cpu().numpy()


def _build() -> dict[str, Callable]:
    """Compile-on-first-call kernels (cached on disk by Numba); {} when Numba is unusable."""
    choice = os.environ.get("SNN_EVENT_KERNELS", "numba").strip().lower()
    if choice == "torch":
        return {}
    if choice != "numba":
        LOG.warning("SNN_EVENT_KERNELS=%r: expected 'numba' (default) or 'torch'; using numba", choice)
    try:
        import numba
    except ImportError:
        LOG.info("numba is not installed: spike events are counted with torch (two passes)")
        return {}
    if numba.config.DISABLE_JIT:
        return {}  # the kernels would run as Python loops
    if numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "threadsafe"
    from numba import njit as numba_njit
    from numba import prange

    def njit(**options):  # cache on disk where Numba finds a writable place, else per process
        def wrap(fn):
            try:
                return numba_njit(**options)(fn)
            except RuntimeError:  # "cannot cache function ...: no locator available"
                return numba_njit(**{**options, "cache": False})(fn)

        return wrap

    @njit(parallel=True, nogil=True, cache=True)
    def channels_last(a, rows, cols, part, scale):  # a [N, H, W, C] (C contiguous); part [H, L]
        n, h, w, c = a.shape
        m = rows.shape[0]
        rescale = scale != 1
        for y in prange(h):
            for j in range(m):
                part[y, j] = 0.0
            for x in range(w):
                count = 0
                for i in range(n):
                    for k in range(c):
                        v = a[i, y, x, k]
                        if v != 0:
                            count += 1
                            if rescale:
                                a[i, y, x, k] = v * scale
                if count:
                    for j in range(m):
                        part[y, j] += count * cols[j, x]
            for j in range(m):
                part[y, j] *= rows[j, y]

    @njit(parallel=True, nogil=True, cache=True)
    def planar(a, rows, cols, part, scale):  # a [N, C, H, W] (W contiguous); part [H, L]
        n, c, h, w = a.shape
        m = rows.shape[0]
        rescale = scale != 1
        for y in prange(h):
            counts = np.zeros(w, np.int64)
            for i in range(n):
                for k in range(c):
                    for x in range(w):
                        v = a[i, k, y, x]
                        if v != 0:
                            counts[x] += 1
                            if rescale:
                                a[i, k, y, x] = v * scale
            for j in range(m):
                acc = 0.0
                for x in range(w):
                    acc += counts[x] * cols[j, x]
                part[y, j] = acc * rows[j, y]

    @njit(nogil=True, cache=True)
    def reached(flat, currents, weights):  # Σ over elements of Σ_j weights[j]·[x ≥ currents[j]]
        # serial, one vectorised counting loop per threshold: faster here than a parallel loop
        # (1M floats, 4 thresholds: 0.57 ms against 0.8 ms on 2 threads and 4.8 ms with torch)
        total = 0.0
        for j in range(currents.shape[0]):
            c = currents[j]
            k = 0
            for i in range(flat.shape[0]):
                k += flat[i] >= c
            total += k * weights[j]
        return total

    def set_threads() -> None:
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))

    from snn_perception.models.neuron_kernels import compile_kernels  # it imports this module

    return {
        "channels_last": channels_last,
        "planar": planar,
        "reached": reached,
        "set_threads": set_threads,
        **compile_kernels(njit),
    }


def _layout(s: torch.Tensor) -> str | None:
    """The kernel that reads ``s`` in memory order, or None (torch then)."""
    if s.device.type != "cpu" or s.dtype != torch.float32 or s.dim() != 4 or s.numel() == 0:
        return None
    if s.is_contiguous():
        return "planar"
    if s.is_contiguous(memory_format=torch.channels_last):
        return "channels_last"
    return None


def _run(kind: str, s: torch.Tensor, rows: np.ndarray, cols: np.ndarray, scale: float) -> np.ndarray:
    part = np.empty((s.shape[2], rows.shape[0]), np.float64)
    _kernels["set_threads"]()
    a = s.numpy() if kind == "planar" else s.permute(0, 2, 3, 1).numpy()
    _kernels[kind](a, rows, cols, part, np.float32(scale))
    return part.sum(0)


def weighted_events(
    s: torch.Tensor, rows: np.ndarray, cols: np.ndarray, scale: float = 1.0
) -> np.ndarray | None:
    """``Σ_{y,x} events(y, x) · rows[j, y] · cols[j, x]`` for every ``j``, float64, where
    ``events`` counts the non-zero entries of ``s`` ``[N, C, H, W]`` (≥ 0) at each pixel over N
    and C; ``rows`` ``[L, H]`` and ``cols`` ``[L, W]`` are float64 and C-contiguous. ``scale``:
    multiply ``s`` in place by it in the same pass (a power of two: exact, as ``mul_`` would be).

    One fused pass where a kernel fits ``s`` (CPU, float32, NCHW or channels-last, Numba usable),
    else None and ``s`` untouched: the caller counts (and scales) with torch
    (:func:`weighted_events_torch` gives the same numbers)."""
    kind = _layout(s)
    if kind is None or _state.get(kind) is False:
        return None
    if _state.get(kind):
        return _run(kind, s, rows, cols, scale)

    def first() -> tuple[np.ndarray, bool, str]:
        ref = weighted_events_torch(s, rows, cols)
        probe = s.clone()  # same layout; s stays untouched if the kernel fails
        got = _run(kind, probe, rows, cols, scale)
        ok = bool(np.array_equal(got, ref)) and torch.equal(probe, s * scale)
        if ok:
            s.copy_(probe)
        return ref, ok, f"its sums {got.tolist()} or values differ from torch's {ref.tolist()}"

    return _first_call(kind, first)


def _memory_order(x: torch.Tensor) -> torch.Tensor | None:
    """``x`` flattened in memory order without a copy (its elements stored densely), or None."""
    order = sorted(range(x.dim()), key=lambda d: -x.stride(d))
    view = x.permute(*order)
    return view.reshape(-1) if view.is_contiguous() else None


def firing_total(x: torch.Tensor, currents: torch.Tensor, weights: torch.Tensor) -> float | None:
    """``Σ_i Σ_j weights[j] · [x_i ≥ currents[j]]``: the spikes of constant-current neurons whose
    step thresholds are ``currents`` (``[U]`` or ``[U, 1]``, x's dtype; ``weights``: how many
    steps use each, integers in float64). One pass over ``x`` where a kernel fits (CPU, float32
    or float64, stored densely, Numba usable), else None: the caller counts with
    :func:`firing_total_torch`."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or x.numel() == 0:
        return None
    flat = _memory_order(x)
    if flat is None or _state.get("reached") is False:
        return None
    cur = currents.reshape(-1).numpy()
    w = weights.reshape(-1).numpy()

    def run() -> float:
        a = flat.numpy()
        # integers in float64: the parts add up exactly
        return split_sum(lambda lo, hi: float(_kernels["reached"](a[lo:hi], cur, w)), a.shape[0], _MIN_SPLIT)

    if _state.get("reached"):
        return run()

    def first() -> tuple[float, bool, str]:
        ref = float(firing_total_torch(x, currents, weights))
        got = run()
        return ref, got == ref, f"its total {got} differs from torch's {ref}"

    return _first_call("reached", first)


def split_sum(part: Callable[[int, int], float], n: int, per: int, align: int = 1) -> float:
    """``Σ part(lo, hi)`` over ``0..n`` cut into up to torch's thread count of parts (at least
    ``per`` elements each, bounds multiples of ``align``), run at once: the first in this thread,
    the others in a small pool (the kernels release the GIL). One part runs here alone."""
    units = n // align
    parts = min(torch.get_num_threads(), _MAX_SPLIT, max(1, units * align // per))
    if parts == 1:
        return part(0, n)
    bounds = [units * i // parts * align for i in range(parts)] + [n]
    futures = [_split_pool().submit(part, lo, hi) for lo, hi in itertools.pairwise(bounds[1:])]
    return part(0, bounds[1]) + sum(f.result() for f in futures)


def _split_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:  # not _lock: the first, checked call holds that one
        if _pool is None:
            _pool = ThreadPoolExecutor(_MAX_SPLIT - 1, thread_name_prefix="snn-count")
        return _pool


def firing_total_torch(x: torch.Tensor, currents: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """:func:`firing_total` with torch on any device, as a float64 tensor (no synchronisation):
    one comparison per distinct current, chunk by chunk so that the results stay in cache."""
    flat = x.permute(*sorted(range(x.dim()), key=lambda d: -x.stride(d))).reshape(-1)
    currents = currents.reshape(-1, 1)
    chunk = (1 << (21 if x.device.type == "cpu" else 24)) // currents.shape[0]
    buf = torch.empty((currents.shape[0], min(chunk, flat.numel())), dtype=torch.float32, device=x.device)
    rows = []  # per chunk, how many currents reach each c (float32: exact below 2^24)
    for i in range(0, flat.numel(), chunk):
        part = flat[i : i + chunk]
        rows.append(torch.ge(part, currents, out=buf[:, : part.numel()]).sum(1))
    return torch.stack(rows).to(torch.float64).sum(0) @ weights.reshape(-1)


def _first_call(kind: str, first: Callable[[], tuple]) -> object | None:
    """Compile the kernels (once), run ``first`` (kernel against torch: ``(reference, ok, why)``),
    and keep the kernel for ``kind`` only if it agreed. Returns the reference, or None (the
    caller counts with torch, as on every later call) when the kernel is unusable."""
    global _kernels
    with _lock:
        if _kernels is None:
            try:
                _kernels = _build()
            except Exception as e:  # a broken Numba install must not stop inference
                LOG.warning("numba kernels unusable, counting with torch: %s: %s", type(e).__name__, e)
                _kernels = {}
        if not _kernels:
            for k in _KINDS:
                _state[k] = False
            return None
        try:
            ref, ok, why = first()
        except Exception as e:  # a platform without a usable threading layer, etc.
            ref, ok, why = None, False, f"{type(e).__name__}: {e}"
        _state[kind] = ok
        if not ok:
            LOG.warning("fused event counting (%s) is unusable here, counting with torch: %s", kind, why)
            return None
        return ref


def kernel_status() -> dict[str, bool | None]:
    """Per layout: True (kernel in use), False (torch, after a failed check), None (untried)."""
    return {k: _state.get(k) for k in _KINDS}


def warm() -> dict[str, bool | None]:
    """Compile (or load from Numba's cache) and check both kernels now, on a tiny tensor, so the
    first counted frame does not pay it; returns :func:`kernel_status`."""
    g = torch.Generator().manual_seed(0)
    s = (torch.randint(0, 3, (2, 3, 5, 4), generator=g) * 0.5).float()
    rows, cols = np.ones((2, 5)), np.ones((2, 4))
    for t in (s, s.contiguous(memory_format=torch.channels_last)):
        weighted_events(t, rows, cols, 0.5)
    firing_total(s, torch.tensor([0.5, 1.0]), torch.tensor([1.0, 2.0], dtype=torch.float64))
    from snn_perception.models.neuron_kernels import warm as warm_neurons  # it imports this module

    warm_neurons()
    return kernel_status()
