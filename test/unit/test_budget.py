"""Per-frame budgets: the engine picks T from an online cost model, never zero, and adapts."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from snn_perception.models.counting import OpCounts
from snn_perception.runtime.budget import Budget, BudgetPlanner, CostModel
from snn_perception.runtime.engine import Engine, EngineConfig, ModelInfo


class SlowSpiking(torch.nn.Module):
    """A spiking model with a known cost: ``per_step_s`` of sleep per timestep; its output is the
    mean over T of a step-dependent value, so outputs differ between T."""

    size_multiple = 1

    def __init__(self, per_step_s: float) -> None:
        super().__init__()
        self.per_step_s = per_step_s
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        self.calls.append(timesteps)
        time.sleep(self.per_step_s * timesteps)
        scale = sum(1.0 / (t + 1) for t in range(timesteps)) / timesteps
        return torch.cat([x[:, :1] * scale, 1 - x[:, :1] * scale], 1)

    def set_counting(self, enabled: bool) -> None:
        pass

    def read_counters(self) -> OpCounts:
        n = self.calls[-1] if self.calls else 0
        return OpCounts(synaptic_ops=1e9 * n)  # 0.9 mJ per step at 0.9 pJ per SOP


def _engine(per_step_s: float, default_t: int = 8) -> Engine:
    info = ModelInfo(
        task="segment",
        arch="slow_spiking",
        variant="",
        weights_id="fake",
        weights_path="",
        default_timesteps=default_t,
        num_classes=2,
    )
    return Engine(SlowSpiking(per_step_s), info, EngineConfig(tune_allocator=False), torch.device("cpu"))


IMAGE = np.full((16, 16, 3), 100, np.uint8)


def test_the_engine_stops_at_the_budget() -> None:
    """20 ms per step and a 110 ms budget: after the first (measuring) frame, T settles at the
    largest value that fits (5, or 4 when the machine is busy) and frames keep within the budget.

    Assumes a sleep of 20 ms overshoots by less than 4 ms on average, true on an idle or loaded CPU.
    A single frame can still be held up far longer while another process takes the core (seen
    under ``make test``'s second worker: T 1, 4, 4, 4, 2, 3, …): the planner then lowers T at once
    and climbs back over a few frames, by design. So T must never exceed what fits (5) and must be
    4 or 5 on most frames, which one such hold-up in 12 frames leaves true; a planner that
    over- or under-shoots the budget fails either way."""
    engine = _engine(0.020)
    ts, missed = [], []
    for _ in range(12):
        stats = engine.run(IMAGE, budget=Budget(latency_ms=110)).stats
        ts.append(stats.timesteps)
        missed.append(stats.budget_missed)
    assert ts[0] == 1  # the first frame of a size measures the model with one step
    settled = ts[2:]
    assert max(settled) <= 5, ts  # 6 steps of 20 ms do not fit 90 % of 110 ms
    assert sum(t in (4, 5) for t in settled) >= 7, ts
    assert sum(missed[2:]) <= 2, (ts, missed)
    assert engine.run(IMAGE).stats.timesteps == 8  # without a budget: the default T


def test_a_generous_budget_gives_the_fixed_t_output() -> None:
    engine = _engine(0.001)
    fixed = engine.run(IMAGE, timesteps=6)
    for _ in range(3):
        budgeted = engine.run(IMAGE, timesteps=6, budget=Budget(latency_ms=10_000))
    assert budgeted.stats.timesteps == 6 and budgeted.stats.max_timesteps == 6
    assert np.array_equal(budgeted.output, fixed.output)
    assert np.array_equal(budgeted.scores, fixed.scores)
    assert not budgeted.stats.budget_missed


@pytest.mark.parametrize("spent", [0.0, 500.0])
def test_never_zero_steps(spent: float) -> None:
    engine = _engine(0.005)
    for _ in range(4):
        stats = engine.run(IMAGE, budget=Budget(latency_ms=1, spent_ms=spent)).stats
        assert stats.timesteps == 1
    assert stats.budget_missed


def test_the_cost_model_adapts_when_the_per_step_cost_changes() -> None:
    """As when another process takes a core: the per-step cost doubles and T halves within frames.

    85 ms less the 10 % jitter margin fits 7 steps of 10 ms on an idle CPU, but on one whose cores
    are busy each sleep overshoots (measured: 6 steps while training ran on both cores), so T before
    the change is only required to be a multi-step one, and T after it at most half of that, rounded
    up (7 → 4, 6 → 3, 5 → 3), which holds for any overshoot up to ~5 ms per sleep."""
    engine = _engine(0.010)
    before = [engine.run(IMAGE, budget=Budget(latency_ms=85)).stats.timesteps for _ in range(6)]
    t_before = max(before[3:])  # settled; the largest, as one held-up frame lowers the next few
    engine.model.per_step_s = 0.020
    ts = [engine.run(IMAGE, budget=Budget(latency_ms=85)).stats.timesteps for _ in range(10)]
    assert t_before >= 4 and ts[-1] <= (t_before + 1) // 2, (t_before, ts)


def test_the_energy_budget_uses_the_counted_energy() -> None:
    engine = _engine(0.0)
    ts = [engine.run(IMAGE, budget=Budget(energy_mj=3.0)).stats.timesteps for _ in range(3)]
    assert ts == [1, 3, 3]  # 0.9 mJ per step: three steps fit 3 mJ


def test_cost_model_and_budget_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        Budget(latency_ms=-1)
    with pytest.raises(ValueError, match="alpha"):
        CostModel(alpha=0)
    slow_up = CostModel()
    slow_up.observe((8, 8), 2, 0.0, 20.0)
    slow_up.observe((8, 8), 2, 0.0, 40.0)  # a slowdown is followed at 0.7, a speed-up at 0.3
    assert slow_up.coefficients((8, 8)) == (0.0, pytest.approx(10 + 0.7 * 10))
    model = CostModel()
    model.observe((8, 8), 4, 2.0, 40.0)
    assert model.coefficients((8, 8)) == (2.0, 10.0)
    assert model.steps_within((8, 8), 33.0, 8, margin=1.0) == 3
    assert model.steps_within((8, 8), 33.0, 8) == 2  # 10 % kept back for jitter: 29.7 ms
    assert BudgetPlanner().plan((8, 8), Budget(latency_ms=5), 0.0, 8) == 1
