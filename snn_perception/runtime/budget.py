"""Per-frame budgets: how many timesteps fit in the time (or energy) a frame may take.

A spiking network's output is an accumulation over timesteps, so fewer steps give a coarser
answer sooner. :class:`CostModel` learns, per input size, what a frame costs as a function of T:
``cost(T) ≈ fixed + T · per_step``. Both parts are measured on every frame (the engine times its
pre/post-processing apart from the network, whose time grows with T) and smoothed by an
exponential moving average, so the model follows the machine as it changes: another process
taking a core doubles ``per_step`` within a few frames. :meth:`CostModel.steps_within` picks the
largest T whose predicted cost fits what is left of the budget, and never fewer than one step:
a frame always gets an answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class _Costs:
    fixed: float
    per_step: float


class CostModel:
    """Online ``cost(T) = fixed + T · per_step`` per input size (milliseconds, or millijoules).

    ``alpha``: weight of the newest frame in the moving averages when it cost less than predicted
    (0.3: speed-ups are trusted over about five frames); ``alpha_up`` when it cost more (0.7: a
    slowdown, such as another process taking a core, is followed at once, since every frame
    predicted too cheap risks a missed deadline).
    """

    def __init__(self, alpha: float = 0.3, alpha_up: float = 0.7) -> None:
        if not (0.0 < alpha <= 1.0 and 0.0 < alpha_up <= 1.0):
            raise ValueError(f"alpha={alpha}, alpha_up={alpha_up}: must be in (0, 1]")
        self.alpha, self.alpha_up = alpha, alpha_up
        self._costs: dict[tuple[int, ...], _Costs] = {}

    def observe(self, key: tuple[int, ...], steps: int, fixed: float, variable: float) -> None:
        """A frame of size ``key`` ran ``steps`` timesteps: ``fixed`` is the part that does not grow
        with T, ``variable`` the part that does."""
        if steps < 1 or not (math.isfinite(fixed) and math.isfinite(variable)) or min(fixed, variable) < 0:
            return
        per_step = variable / steps
        c = self._costs.get(key)
        if c is None:
            self._costs[key] = _Costs(fixed, per_step)
            return
        a = self.alpha_up if fixed + variable > c.fixed + c.per_step * steps else self.alpha
        c.fixed += a * (fixed - c.fixed)
        c.per_step += a * (per_step - c.per_step)

    def coefficients(self, key: tuple[int, ...]) -> tuple[float, float] | None:
        """``(fixed, per_step)`` for this size; None before its first frame."""
        c = self._costs.get(key)
        return None if c is None else (c.fixed, c.per_step)

    def steps_within(
        self, key: tuple[int, ...], available: float, max_steps: int, margin: float = 0.9
    ) -> int:
        """The largest T in 1..``max_steps`` whose predicted cost fits ``margin`` · ``available``
        (at least 1): the margin absorbs frame-to-frame jitter.

        Before the first frame of a size: one step, which measures the model at the least risk.
        """
        coef = self.coefficients(key)
        if coef is None:
            return 1
        fixed, per_step = coef
        if per_step <= 0:
            return max_steps
        fit = math.floor((margin * available - fixed) / per_step + 1e-9)
        return int(min(max(fit, 1), max_steps))


@dataclass
class Budget:
    """What one frame may spend. 0 means no limit. ``spent_ms``: already gone before the engine
    ran (queueing since the frame arrived), so the deadline counts from arrival."""

    latency_ms: float = 0.0
    energy_mj: float = 0.0
    spent_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in ("latency_ms", "energy_mj", "spent_ms"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}={value}: must be a finite number ≥ 0 (0 = no budget)")

    @property
    def active(self) -> bool:
        return self.latency_ms > 0 or self.energy_mj > 0


class BudgetPlanner:
    """Chooses each frame's T from a latency and/or energy budget, and learns from the result.

    Time: ``fixed`` = the engine's post-processing (it runs after the decision), ``variable`` = the
    network. Energy: the network's estimated energy in mJ, all of it per step (the static first
    layers are a small fixed share, which counts as per-step here: a conservative choice).
    """

    def __init__(self) -> None:
        self.time = CostModel()
        self.energy = CostModel()

    def plan(self, key: tuple[int, ...], budget: Budget, elapsed_ms: float, max_steps: int) -> int:
        """T for this frame: the most steps that fit both budgets given ``elapsed_ms`` already used
        in this run (queueing and pre-processing) and ``budget.spent_ms`` before it; at least 1."""
        steps = max_steps
        if budget.latency_ms > 0:
            left = budget.latency_ms - budget.spent_ms - elapsed_ms
            steps = min(steps, self.time.steps_within(key, left, max_steps))
        if budget.energy_mj > 0:
            steps = min(steps, self.energy.steps_within(key, budget.energy_mj, max_steps, margin=1.0))
        return max(1, steps)

    def observe(
        self, key: tuple[int, ...], steps: int, post_ms: float, network_ms: float, energy_mj: float | None
    ) -> None:
        self.time.observe(key, steps, post_ms, network_ms)
        if energy_mj is not None:
            self.energy.observe(key, steps, 0.0, energy_mj)
