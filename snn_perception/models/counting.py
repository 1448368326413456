"""Synaptic-operation, MAC and spike-rate counters that models fill in during a forward pass.

Pure counting (no energy constants: the runtime turns counts into joules), so it lives beside
the models that fill it in.

Conventions (the ones the SNN energy literature uses, made exact at image borders):

* a layer fed by **binary spikes** costs one accumulate (SOP) per non-zero input per synapse it
  reaches: ``SOPs = Σ_nonzero inputs fan-out``, summed over the batch and all T steps. For a
  convolution the fan-out of an input near a border is smaller: an input at ``(y, x)`` is read
  by ``rows(y) · cols(x)`` (output, tap) pairs, exact at borders;
* a layer fed by **analog values** costs one MAC per valid weight tap of every output;
* neuron state updates and batch-norms that fold into the neighbouring convolution are free.

Counting is cheap: :class:`OpCounter` keeps spike-dependent counts as small tensors on the
model's device and reads them all with **one** host synchronisation per frame (:meth:`result`).
A spike tensor is reduced once, and that reduction gives its spike rate and the SOPs of every
layer it feeds. Border-exact fan-out is closed form: away from the borders ``rows(y) = r0`` (for
stride s, periodic), so ``Σ rows·cols·active = r0·c0·(active total) + Σ_frame (rows·cols −
r0·c0)·active`` over the few border rows and columns (slice sums, no extra convolution). Counts
are float32 partial sums of integers below 2^24 combined in float64: exact, element for element.
On the CPU the graded spikes of the spiking U-Nets and the spike coder's constant-current totals
go through fused kernels instead (:mod:`event_kernels`: one pass, host numbers, same values).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import torch

from snn_perception.models.event_kernels import events_per_pixel_torch, weighted_events
from snn_perception.models.fan_out import Frame, fan_out_1d, frame

#: a float32 sum of 0/1 values is exact in any order while the total stays at or below 2^24
_F32_EXACT = 1 << 24


@dataclass
class OpCounts:
    """Counters read from a model after a forward pass (summed over the batch and T).

    ``synaptic_ops``: for layers fed by binary spikes, non-zero inputs × fan-out.
    ``analog_macs``: for layers fed by analog values, the dense multiply-accumulates.
    ``layer_spike_rates``: spikes per neuron per timestep for each spiking layer.
    """

    synaptic_ops: float = 0.0
    analog_macs: float = 0.0
    layer_names: list[str] = field(default_factory=list)
    layer_spike_rates: list[float] = field(default_factory=list)
    layer_neurons: list[float] = field(default_factory=list)

    @property
    def mean_spike_rate(self) -> float:
        """Neuron-weighted mean over layers (each neuron-timestep counts once)."""
        total = sum(self.layer_neurons)
        if total <= 0:
            return 0.0
        return sum(r * n for r, n in zip(self.layer_spike_rates, self.layer_neurons, strict=True)) / total


def _residue_sums(s: torch.Tensor, pr: int, pc: int) -> torch.Tensor | None:
    """``M_ij``: active inputs of ``[N, C, H, W]`` with ``y ≡ i (mod pr)``, ``x ≡ j (mod pc)``,
    float64 ``[pr·pc]``, exact; None where H, W are not multiples or a partial sum could round."""
    n, c, h, w = s.shape
    if h % pr or w % pc or n * c * (w // pc) > _F32_EXACT:
        return None
    exact = torch.float64 if s.dtype == torch.bool or not s.is_floating_point() else torch.float32
    grid = s.unflatten(3, (w // pc, pc)).unflatten(2, (h // pr, pr))  # [N, C, H/pr, pr, W/pc, pc]
    return grid.sum(dim=(0, 1, 4), dtype=exact).to(torch.float64).sum(0).reshape(-1)


_DEVICE_CONSTANTS: dict[tuple, torch.Tensor] = {}


def _constant(key: tuple, values: Iterable[float], device: torch.device) -> torch.Tensor:
    """A float64 tensor of host constants, made once per device."""
    full = (*key, str(device))
    t = _DEVICE_CONSTANTS.get(full)
    if t is None:
        if len(_DEVICE_CONSTANTS) > 4096:
            _DEVICE_CONSTANTS.clear()
        t = _DEVICE_CONSTANTS[full] = torch.tensor(list(values), dtype=torch.float64, device=device)
    return t


# ----------------------------------------------------------------------------- device-side counts


def exact_total(x: torch.Tensor) -> torch.Tensor:
    """Number of active entries of a spike tensor (0/1 values, or bool), on ``x``'s device.

    No synchronisation: returns a tensor whose entries add up (in float64) to the count, each
    exact: a float32 sum of 0/1 values is exact while it stays at or below 2^24, so larger
    tensors are summed in chunks of 2^24 (one vectorised pass, no temporary mask).
    """
    n = x.numel()
    if x.dtype == torch.float32 and n <= _F32_EXACT:
        return x.sum()
    if x.dtype == torch.bool:
        return torch.count_nonzero(x)
    if not x.is_floating_point() or x.dtype == torch.float64:
        return x.sum()
    if n <= _F32_EXACT:
        return x.sum(dtype=torch.float32)
    order = sorted(range(x.dim()), key=lambda d: -x.stride(d))  # memory order: a free flattening
    flat = x.reshape(-1) if x.is_contiguous() else x.permute(*order).reshape(-1)
    k = n // _F32_EXACT
    head = flat[: k * _F32_EXACT].view(k, _F32_EXACT).sum(1, dtype=torch.float32)
    return torch.cat((head, flat[k * _F32_EXACT :].sum(dtype=torch.float32).reshape(1)))


def _per_pixel(x: torch.Tensor) -> torch.Tensor:
    """Active inputs per pixel of ``[N, C, H, W]`` (sum over N and C), exact, float64."""
    if x.dtype == torch.bool or not x.is_floating_point():
        return x.sum(dim=(0, 1), dtype=torch.float64)
    return x.sum(dim=(0, 1), dtype=torch.float32).to(torch.float64)  # exact: ≤ N·C per pixel


def _frame_sums(s: torch.Tensor, fr: Frame) -> torch.Tensor:
    """Active inputs per pixel of the frame (top, bottom, left, right blocks), float64, exact."""
    h, w = s.shape[-2:]
    if fr.top == fr.bottom == 1 and h > 1:
        rows = [s[:, :, :: h - 1]]  # first and last row in one strided view
    else:
        rows = [p for p, n in ((s[:, :, : fr.top], fr.top), (s[:, :, h - fr.bottom :], fr.bottom)) if n]
    mid = s[:, :, fr.top : h - fr.bottom]
    if fr.left == fr.right == 1 and w > 1:
        cols = [mid[..., :: w - 1]]  # interleaved per row: (y, 0), (y, w-1) — see _frame's weights
    else:
        cols = [p for p, n in ((mid[..., : fr.left], fr.left), (mid[..., w - fr.right :], fr.right)) if n]
    exact = torch.float64 if s.dtype == torch.bool or not s.is_floating_point() else torch.float32
    sums = [p.sum(dim=(0, 1), dtype=exact).reshape(-1) for p in (*rows, *cols)]
    return torch.cat(sums).to(torch.float64) if len(sums) > 1 else sums[0].to(torch.float64)


class Spikes:
    """Device-side statistics of one spike tensor ``[N, C, H, W]`` (any shape for the total), each
    computed once on first use: :meth:`total` and :meth:`terms` (border-exact conv fan-out)."""

    __slots__ = ("_pixels", "_taps", "_total", "numel", "tensor")

    def __init__(
        self, tensor: torch.Tensor, pixels: torch.Tensor | None = None, total: float | None = None
    ) -> None:
        """``pixels``: the events per pixel ``[H, W]`` (summed over N and C), when the caller has
        them (:meth:`OpCounter.graded`); every statistic then comes from that small map, and the
        tensor is not read again. ``total``: the number of events, when the caller counted them
        (a fused neuron kernel, as it fired): the total then needs no pass over the tensor."""
        self.tensor = tensor.detach()  # counting is never differentiated
        self.numel = tensor.numel()
        self._total: torch.Tensor | None = (
            None if total is None else torch.tensor(float(total), dtype=torch.float64)
        )
        self._taps: dict[tuple[int, ...], tuple] = {}
        self._pixels = None if pixels is None else pixels.detach().to(torch.float64)  # exact sums

    def total(self) -> torch.Tensor:
        if self._total is None:
            self._total = exact_total(self.tensor) if self._pixels is None else self._pixels.sum()
        return self._total

    def terms(self, kernel: int, stride: int = 1, padding: int = 0, upsample: int = 1) -> tuple:
        """``((tensor, coefficients), ...)``: the taps are ``Σ coefficient · entry`` over all terms.

        ``upsample``: the convolution reads the tensor after a nearest ×``upsample`` upsampling.
        """
        key = (kernel, stride, padding, upsample)
        hit = self._taps.get(key)
        if hit is not None:
            return hit
        s = self.tensor
        n, c, h, w = s.shape
        # with a per-pixel map already at hand, the weighted sum over it (exact in float64) is
        # cheapest; otherwise the closed-form frame avoids building one
        fr = frame(h, w, *key) if self._pixels is None else None
        residues = None if fr is None or fr.base else _residue_sums(s, *fr.period)
        if fr is None or (not fr.base and residues is None):
            rows, cols = (_constant(("fan", m, *key), fan_out_1d(m, *key), s.device) for m in (h, w))
            pixels = _per_pixel(s) if self._pixels is None else self._pixels
            hit = ((rows @ pixels @ cols, 1.0),)
        else:
            out = [(self.total(), float(fr.base)) if fr.base else (residues, fr.residue_base)]
            if fr.edge is not None:  # row and column totals of the one-pixel frame, and corners
                dt = torch.float32 if n * c * max(h, w) <= _F32_EXACT else torch.float64
                rows, cols = s[:, :, :: h - 1], s[:, :, 1 : h - 1, :: w - 1]
                out += [
                    (rows.sum(dim=(0, 1, 3), dtype=dt), fr.edge[:2]),
                    (cols.sum(dim=(0, 1, 2), dtype=dt), fr.edge[2:4]),
                    (rows[..., :: w - 1].sum(dim=(0, 1), dtype=dt), fr.edge[4:]),
                ]
            elif fr.weights:
                weights = _constant(("frame", h, w, *key), fr.weights, s.device)
                out.append((torch.dot(_frame_sums(s, fr), weights), 1.0))
            hit = tuple(out)
        self._taps[key] = hit
        return hit


# ----------------------------------------------------------------------------- consumers


@dataclass(frozen=True)
class Conv:
    """A convolution fed by spikes: every spike costs ``rows(y)·cols(x)·C_out/groups`` SOPs."""

    layer: str
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    #: the convolution reads the spikes after a nearest ×``upsample`` upsampling (not materialised)
    upsample: int = 1


@dataclass(frozen=True)
class Dense:
    """A layer where every spike reaches ``fan_out`` synapses wherever it is: a 1×1 convolution
    (``C_out/groups``), a non-overlapping transposed convolution (``C_out/groups · k²``) or a
    pooling (1)."""

    layer: str
    fan_out: float


# ----------------------------------------------------------------------------- the counter


@functools.lru_cache(maxsize=512)
def _graded_weights(h: int, w: int, consumers: tuple[Conv | Dense, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Separable per-pixel weights ``rows [1+L, H]``, ``cols [1+L, W]`` (float64): row 0 counts
    events, row j the SOPs of consumer j (border-exact fan-out · C_out/groups, or a constant)."""
    rows, cols = [np.ones(h)], [np.ones(w)]
    for c in consumers:
        if isinstance(c, Dense):
            rows.append(np.full(h, float(c.fan_out)))
            cols.append(np.ones(w))
            continue
        key = (c.kernel, c.stride, c.padding, c.upsample)
        rows.append(np.asarray(fan_out_1d(h, *key), np.float64) * float(c.out_channels // c.groups))
        cols.append(np.asarray(fan_out_1d(w, *key), np.float64))
    return np.ascontiguousarray(np.stack(rows)), np.ascontiguousarray(np.stack(cols))


class OpCounter:
    """Accumulates one forward pass's counts; :meth:`result` turns them into :class:`OpCounts`.

    Host numbers (MACs from shapes, neuron counts) are added at once; spike-dependent numbers
    stay on the device until the first read (:meth:`result`, :attr:`sops`, :attr:`macs`,
    :attr:`layers`), which fetches them all with one synchronisation.

    Fast API for a model (no sync, one reduction per spike tensor)::

        h = counter.spikes("enc0.a1", s, Conv("enc.0.conv2", 64, 3, padding=1), Dense("pool0", 1))
        counter.fan_out(h, Dense("up.0", 4 * 32))   # more layers fed by the same tensor, later
        counter.spikes("dec0", s2, Conv("dec.1", 32, 3, padding=1, upsample=2))  # reads up2(s2)
        counter.add_macs(dense_conv_macs(x.shape, 64, 3, padding=1), "enc.0.conv1")

    ``add_sops`` / ``add_macs`` also take a (device) tensor; :func:`conv_ops` and
    :func:`count_active` return host floats (one sync each) and keep working.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._spikes: dict[str, list[float]] = {}  # name → [spikes, neuron-steps]
        #: layer name → [SOPs, MACs], for reports and for checking against brute force
        self._layers: dict[str, list[float]] = {}
        # deferred terms: entry[index] += coefficient · (sum of the tensor's entries), read later
        self._pending: list[tuple[torch.Tensor, list[float], int, float | tuple[float, ...]]] = []
        self._memo: dict[int, tuple[torch.Tensor, Spikes]] = {}

    # -- host numbers, or tensors read later

    def _add(self, entry: list[float], idx: int, n: float | torch.Tensor) -> None:
        if isinstance(n, torch.Tensor):
            self._pending.append((n.detach(), entry, idx, 1.0))
        else:
            entry[idx] += float(n)

    def add_sops(self, n: float | torch.Tensor, layer: str = "") -> None:
        self._add(self._layers.setdefault(layer, [0.0, 0.0]), 0, n)

    def add_macs(self, n: float | torch.Tensor, layer: str = "") -> None:
        self._add(self._layers.setdefault(layer, [0.0, 0.0]), 1, n)

    def add_spikes(
        self, name: str, count: torch.Tensor | float | Sequence[torch.Tensor], neurons: float
    ) -> None:
        """Record a spike count computed by the caller (tensor(s) whose entries add up to it)."""
        entry = self._spikes.setdefault(name, [0.0, 0.0])
        entry[1] += float(neurons)
        for c in count if isinstance(count, Sequence) else (count,):
            self._add(entry, 0, c)

    # -- spike tensors

    def measure(self, s: torch.Tensor) -> Spikes:
        """The handle of spike tensor ``s``, shared by all calls with this very tensor until
        :meth:`release`, so it is reduced once (``s`` must not change in place meanwhile)."""
        hit = self._memo.get(id(s))
        if hit is None or hit[0] is not s:
            hit = self._memo[id(s)] = (s, Spikes(s))
        return hit[1]

    def release(self) -> None:
        """Drop the tensors that :meth:`measure` keeps (their counts stay)."""
        self._memo.clear()

    def spikes(self, name: str, s: torch.Tensor | Spikes, *consumers: Conv | Dense) -> Spikes:
        """Record a spike tensor (any shape; every element is one neuron at one step) and the SOPs
        of the ``consumers`` it feeds, from one reduction. Returns the handle for later use."""
        h = s if isinstance(s, Spikes) else Spikes(s)
        entry = self._spikes.setdefault(name, [0.0, 0.0])
        entry[1] += float(h.numel)
        self._pending.append((h.total(), entry, 0, 1.0))
        self.fan_out(h, *consumers)
        return h

    def graded(
        self,
        name: str,
        s: torch.Tensor,
        *consumers: Conv | Dense,
        scale: float = 1.0,
        events: np.ndarray | None = None,
    ) -> None:
        """:meth:`spikes` for graded spikes ``[N, C, H, W]`` (multi-threshold outputs: every value
        ≥ 0, an event wherever non-zero). One fused CPU pass gives the events and every
        consumer's SOPs as host numbers (:mod:`event_kernels`); elsewhere (GPU, no Numba) the
        event mask is reduced once to events per pixel, and the rest comes from that small map.

        ``scale``: multiply ``s`` in place by it (the neuron's deferred output scale, see
        ``mt_multistep(defer_scale=True)``), in the same pass where the kernel runs.
        ``events``: the events per pixel ``[H, W]`` when the neuron counted them as it fired
        (``mt_multistep(events=...)``): ``s`` is then not read at all (nor scaled)."""
        s = s.detach()
        rows, cols = _graded_weights(s.shape[-2], s.shape[-1], consumers)
        if events is not None:  # integers times integer weights, below 2^53: exact in float64
            sums = ((rows @ events) * cols).sum(1)
        else:
            sums = weighted_events(s, rows, cols, scale)
        if sums is None:
            if scale != 1.0:
                s.mul_(scale)
            self.spikes(name, Spikes(s, pixels=events_per_pixel_torch(s)), *consumers)
            return
        entry = self._spikes.setdefault(name, [0.0, 0.0])
        entry[0] += float(sums[0])
        entry[1] += float(s.numel())
        for c, v in zip(consumers, sums[1:].tolist(), strict=True):
            self._layers.setdefault(c.layer, [0.0, 0.0])[0] += v

    def fan_out(self, s: torch.Tensor | Spikes, *consumers: Conv | Dense) -> Spikes:
        """SOPs of the layers fed by spike tensor ``s`` (``[N, C, H, W]`` for a :class:`Conv`)."""
        h = s if isinstance(s, Spikes) else Spikes(s)
        for c in consumers:
            entry = self._layers.setdefault(c.layer, [0.0, 0.0])
            if isinstance(c, Dense):
                self._pending.append((h.total(), entry, 0, float(c.fan_out)))
                continue
            per_tap = float(c.out_channels // c.groups)
            for t, coef in h.terms(c.kernel, c.stride, c.padding, c.upsample):
                k = tuple(v * per_tap for v in coef) if isinstance(coef, tuple) else coef * per_tap
                self._pending.append((t, entry, 0, k))
        return h

    # -- reading

    def _flush(self) -> None:
        """Fetch every deferred count with one synchronisation and fold it into the host numbers."""
        self._memo.clear()
        pending = self._pending
        if not pending:
            return
        self._pending = []
        groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
        seen: set[int] = set()
        for t, *_ in pending:
            if id(t) not in seen:
                seen.add(id(t))
                groups.setdefault((t.dtype, t.device), []).append(t)
        device = pending[0][0].device
        ordered = [t for ts in groups.values() for t in ts]
        cats = [torch.cat([t.reshape(-1) for t in ts]).to(device, torch.float64) for ts in groups.values()]
        values = (cats[0] if len(cats) == 1 else torch.cat(cats)).tolist()  # the one sync
        start: dict[int, int] = {}
        i = 0
        for t in ordered:
            start[id(t)] = i
            i += t.numel()
        for t, entry, idx, coef in pending:
            i, n = start[id(t)], t.numel()
            if isinstance(coef, tuple):  # one coefficient per entry
                entry[idx] += sum(v * k for v, k in zip(values[i : i + n], coef, strict=True))
            else:
                entry[idx] += (values[i] if n == 1 else sum(values[i : i + n])) * coef

    @property
    def layers(self) -> dict[str, list[float]]:
        self._flush()
        return self._layers

    @property
    def sops(self) -> float:
        return sum(v[0] for v in self.layers.values())

    @property
    def macs(self) -> float:
        return sum(v[1] for v in self.layers.values())

    def result(self) -> OpCounts:
        self._flush()
        names = list(self._spikes)
        return OpCounts(
            synaptic_ops=self.sops,
            analog_macs=self.macs,
            layer_names=names,
            layer_spike_rates=[s / n if n else 0.0 for s, n in self._spikes.values()],
            layer_neurons=[n for _, n in self._spikes.values()],
        )


# ----------------------------------------------------------------------------- the counting context

#: the counter of the forward pass running in this context (thread), None when not counting
_ACTIVE: ContextVar[OpCounter | None] = ContextVar("snn_perception_op_counter", default=None)


def active_counter() -> OpCounter | None:
    """The counter that layers fill in during this forward pass, or None (counting off).

    Models read it where they count instead of taking a counter argument in every ``forward``,
    so counting is attached from outside (:func:`counting`) and the layers' signatures stay those
    of plain PyTorch modules. A context variable: each thread (the node's worker, a test) sees
    its own pass.
    """
    return _ACTIVE.get()


@contextlib.contextmanager
def counting(counter: OpCounter | None) -> Iterator[OpCounter | None]:
    """Make ``counter`` the :func:`active_counter` for the ``with`` body (None: no counting)."""
    token = _ACTIVE.set(counter)
    try:
        yield counter
    finally:
        _ACTIVE.reset(token)


# ----------------------------------------------------------------------------- host-float helpers


def count_active(x: torch.Tensor) -> float:
    """Number of active entries of a spike tensor (0/1 values, or bool), as a host float (syncs)."""
    return float(exact_total(x).to(torch.float64).sum())


def conv_taps(mask: torch.Tensor, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1) -> float:
    """Σ over output positions of the active input taps of ``mask`` ``[N, C_in, H, W]`` (0/1 or bool;
    all groups together), a host float: convolving the mask with a ones kernel and summing."""
    counter = OpCounter()
    counter.fan_out(mask, Conv("", 1, kernel, stride, padding))
    return counter.layers[""][0]


def conv_ops(
    inp: torch.Tensor, out_channels: int, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1
) -> float:
    """Synaptic operations (spike ``inp``) or MACs (pass ``torch.ones_like`` of an analog input;
    :func:`dense_conv_macs` gives the same from the shape alone)."""
    return conv_taps(inp, kernel, stride, padding, groups) * (out_channels // groups)


def transposed_conv_ops(inp: torch.Tensor, out_channels: int, kernel: int, groups: int = 1) -> float:
    """Non-overlapping transposed convolution (stride = kernel, no padding): every input reaches
    ``C_out/groups × k²`` outputs, so no border correction is needed."""
    return count_active(inp) * (out_channels // groups) * kernel * kernel
