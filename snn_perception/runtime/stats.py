"""Per-frame statistics shared by the engine, the nodes, replay and benchmarks.

One record type everywhere means a number measured offline is the number the robot
reports in its ``EnergyTelemetry`` messages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: 45 nm CMOS energy per operation (Horowitz, ISSCC 2014), as used by the SNN papers.
E_AC_PJ = 0.9
E_MAC_PJ = 4.6


@dataclass(frozen=True)
class EnergyModel:
    """Energy constants in picojoules; configurable because they depend on the chip."""

    e_ac_pj: float = E_AC_PJ
    e_mac_pj: float = E_MAC_PJ

    def joules(self, synaptic_ops: float, analog_macs: float) -> float:
        return (self.e_ac_pj * synaptic_ops + self.e_mac_pj * analog_macs) * 1e-12


@dataclass
class FrameStats:
    """What one forward pass cost. Operation counts are zero unless counting was on."""

    timesteps: int
    input_hw: tuple[int, int] = (0, 0)
    model_hw: tuple[int, int] = (0, 0)
    queue_wait_ms: float = 0.0
    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0
    end_to_end_ms: float = 0.0
    cpu_time_ms: float = 0.0
    ops_counted: bool = False
    synaptic_ops: float = 0.0
    analog_macs: float = 0.0
    energy_j: float = 0.0
    e_ac_pj: float = E_AC_PJ
    e_mac_pj: float = E_MAC_PJ
    mean_spike_rate: float = 0.0
    layer_names: list[str] = field(default_factory=list)
    layer_spike_rates: list[float] = field(default_factory=list)
    #: the T asked for (``timesteps`` is what ran: fewer when a budget cut it)
    max_timesteps: int = 0
    latency_budget_ms: float = 0.0  # 0: none
    energy_budget_mj: float = 0.0  # 0: none
    budget_missed: bool = False

    def as_dict(self) -> dict:
        return asdict(self)
