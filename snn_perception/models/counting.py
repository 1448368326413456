"""Synaptic-operation, MAC and spike-rate counters that models fill in during a forward pass.

Pure counting (no energy constants: the runtime turns counts into joules), so it lives beside
the models that fill it in.

Conventions (the ones the SNN energy literature uses, made exact at image borders):

* a layer fed by **binary spikes** costs one accumulate (SOP) per non-zero input per synapse it
  reaches: ``SOPs = Σ_nonzero inputs fan-out``, summed over the batch and all T steps. For a
  convolution the fan-out of an input near a border is smaller; we get it exactly by convolving
  the binary input mask with a ones kernel (valid taps per output position);
* a layer fed by **analog values** costs one MAC per valid weight tap of every output;
* neuron state updates and batch-norms that fold into the neighbouring convolution are free.

Counting is off unless a model's ``set_counting(True)`` was called; it then costs an extra
reduction per spiking layer and per spike-fed convolution (measured by ``snn-perception bench``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


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


def _fan_out_1d(length: int, kernel: int, stride: int, padding: int, device: torch.device) -> torch.Tensor:
    """For each input index, how many (output position, kernel tap) pairs read it along one axis."""
    out_len = (length + 2 * padding - kernel) // stride + 1
    idx = torch.arange(length, device=device)
    fan = torch.zeros(length, dtype=torch.float64, device=device)
    for k in range(kernel):
        num = idx + padding - k  # = output index · stride
        ok = (num >= 0) & (num % stride == 0) & (num // stride < out_len)
        fan += ok.to(torch.float64)
    return fan


def count_active(x: torch.Tensor) -> float:
    """Number of active entries of a spike tensor (0/1 values, or bool).

    A float32 sum of 0/1 values is exact in any order while the total stays below 2^24, so the
    tensor is summed in chunks of at most that size: one vectorised pass, no temporary mask.
    """
    if x.dtype == torch.bool:
        return float(torch.count_nonzero(x))
    flat = x.reshape(-1) if x.is_contiguous() else x.permute(*_dense_order(x)).reshape(-1)
    chunk = 1 << 24
    return float(sum(float(flat[i : i + chunk].sum()) for i in range(0, flat.numel(), chunk)))


def _dense_order(x: torch.Tensor) -> list[int]:
    """Dimension order in which ``x`` is laid out in memory (outermost first), for free flattening."""
    return sorted(range(x.dim()), key=lambda d: -x.stride(d))


def conv_taps(mask: torch.Tensor, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1) -> float:
    """Σ over output positions of the active input taps (all groups together).

    ``mask``: ``[N, C_in, H, W]`` spikes (0/1 or bool). Multiply by ``C_out / groups`` for the
    number of synaptic operations of a ``kernel×kernel`` convolution with these settings.
    Equal to convolving the binary mask with a ones kernel and summing, computed separably:
    an input at ``(y, x)`` is read by ``rows(y) · cols(x)`` (output, tap) pairs, exact at borders.
    """
    _, _, h, w = mask.shape
    active = mask.to(torch.float32) if mask.dtype == torch.bool else mask
    per_pixel = active.sum(dim=(0, 1), dtype=torch.float32).to(torch.float64)  # exact: ≤ N·C per pixel
    rows = _fan_out_1d(h, kernel, stride, padding, mask.device)
    cols = _fan_out_1d(w, kernel, stride, padding, mask.device)
    return float((rows @ per_pixel @ cols).item())


def conv_ops(
    inp: torch.Tensor, out_channels: int, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1
) -> float:
    """Synaptic operations (spike ``inp``) or MACs (pass ``torch.ones_like`` of an analog input)."""
    return conv_taps(inp, kernel, stride, padding, groups) * (out_channels // groups)


def transposed_conv_ops(inp: torch.Tensor, out_channels: int, kernel: int, groups: int = 1) -> float:
    """Non-overlapping transposed convolution (stride = kernel, no padding): every input reaches
    ``C_out/groups × k²`` outputs, so no border correction is needed."""
    return count_active(inp) * (out_channels // groups) * kernel * kernel


class OpCounter:
    """Accumulates one forward pass's counts; :meth:`result` turns them into :class:`OpCounts`."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sops = 0.0
        self.macs = 0.0
        self._spikes: dict[str, list[float]] = {}  # name → [spikes, neuron-steps]
        #: layer name → [SOPs, MACs], for reports and for checking against brute force
        self.layers: dict[str, list[float]] = {}

    def add_sops(self, n: float, layer: str = "") -> None:
        self.sops += float(n)
        self.layers.setdefault(layer, [0.0, 0.0])[0] += float(n)

    def add_macs(self, n: float, layer: str = "") -> None:
        self.macs += float(n)
        self.layers.setdefault(layer, [0.0, 0.0])[1] += float(n)

    def spikes(self, name: str, s: torch.Tensor) -> None:
        """Record a spike tensor (any shape; every element is one neuron at one step)."""
        entry = self._spikes.setdefault(name, [0.0, 0.0])
        entry[0] += count_active(s)
        entry[1] += float(s.numel())

    def result(self) -> OpCounts:
        names = list(self._spikes)
        return OpCounts(
            synaptic_ops=self.sops,
            analog_macs=self.macs,
            layer_names=names,
            layer_spike_rates=[s / n if n else 0.0 for s, n in self._spikes.values()],
            layer_neurons=[n for _, n in self._spikes.values()],
        )
