"""How a node names its model and the timesteps it runs, and the ``EnergyTelemetry`` it publishes.

One place for what the load-model reply, telemetry, diagnostics and log lines say about a model,
so they cannot disagree: an ANN (the U-Net baselines) runs once per frame and reports
``timesteps = 0`` (no timesteps), and a model without a variant is named by its architecture
alone (``unet``, not ``unet/``).
"""

from __future__ import annotations

from typing import Any

from snn_perception.msg import EnergyTelemetry
from snn_perception.runtime.engine import ANN_ARCHS, EngineResult, ModelInfo

__all__ = ["ANN_ARCHS", "describe", "is_ann", "telemetry_msg", "timesteps_in_use"]


def is_ann(info: ModelInfo) -> bool:
    """An ANN baseline (:data:`~snn_perception.runtime.engine.ANN_ARCHS`): no timesteps."""
    return not info.spiking


def timesteps_in_use(info: ModelInfo, requested: int) -> int:
    """The T a frame runs with: ``requested`` or the weights' default; 0 for an ANN (no timesteps)."""
    if is_ann(info):
        return 0
    return int(requested or info.default_timesteps)


def describe(info: ModelInfo, requested: int) -> str:
    """``unet (ANN, no timesteps)`` or ``spiking_unet/w16, T=4``: for log lines and replies."""
    if is_ann(info):
        return f"{info.label} (ANN, no timesteps)"
    return f"{info.label}, T={timesteps_in_use(info, requested)}"


def telemetry_msg(
    header: Any,
    node_name: str,
    info: ModelInfo,
    result: EngineResult,
    frames: tuple[int, int],
    ms: dict[str, float],
) -> EnergyTelemetry:
    """One frame's telemetry. ``frames``: (processed, dropped) since activation; ``ms``: the node's
    own timings (``queue_wait``, ``decode``, ``publish``, ``e2e``, ``cpu``), added to the engine's."""
    s = result.stats
    m = EnergyTelemetry()
    m.header = header
    m.node_name = node_name
    m.model_name, m.model_variant, m.weights_id = info.arch, info.variant, info.weights_id
    m.timesteps = 0 if is_ann(info) else int(s.timesteps)
    m.input_height, m.input_width = (int(v) for v in s.input_hw)
    m.model_height, m.model_width = (int(v) for v in s.model_hw)
    m.queue_wait_ms = float(ms["queue_wait"])
    m.preprocess_ms = float(ms["decode"] + s.queue_wait_ms + s.preprocess_ms)
    m.inference_ms = float(s.inference_ms)
    m.postprocess_ms = float(s.postprocess_ms + ms["publish"])
    m.end_to_end_ms = float(ms["e2e"])
    m.cpu_time_ms = float(ms["cpu"])
    m.frames_processed, m.frames_dropped = int(frames[0]), int(frames[1])
    m.ops_counted = bool(s.ops_counted)
    m.synaptic_ops, m.analog_macs, m.energy_j = float(s.synaptic_ops), float(s.analog_macs), float(s.energy_j)
    m.e_ac_pj, m.e_mac_pj = float(s.e_ac_pj), float(s.e_mac_pj)
    m.mean_spike_rate = float(s.mean_spike_rate)
    m.layer_names = list(s.layer_names)
    m.layer_spike_rates = [float(v) for v in s.layer_spike_rates]
    m.max_timesteps = 0 if is_ann(info) else int(s.max_timesteps or s.timesteps)
    m.latency_budget_ms, m.energy_budget_mj = float(s.latency_budget_ms), float(s.energy_budget_mj)
    m.arrival_to_output_ms = float(ms.get("arrival", 0.0))
    m.budget_missed = bool(s.budget_missed)
    return m
