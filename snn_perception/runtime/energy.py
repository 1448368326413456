"""Operation counts of one forward pass and their energy under the 45 nm model."""

from __future__ import annotations

from dataclasses import dataclass, field

from snn_perception.runtime.stats import EnergyModel


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

    def energy_j(self, model: EnergyModel | None = None) -> float:
        return (model or EnergyModel()).joules(self.synaptic_ops, self.analog_macs)
