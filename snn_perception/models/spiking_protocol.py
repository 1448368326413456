"""The SpikingModel protocol plumbing that the converted networks and their ANN baselines share.

:class:`AnytimeSpiking`: the counting switch, hot thresholds, and the anytime read-out (the
prediction after step r is the output layer's accumulated current divided by r), for a network
that provides ``multistep_output`` (the output current of every step) and ``readout`` (current →
prediction). :class:`AnnBaseline`: an ANN behind the same protocol, counting its dense MACs from the
input size (cached per size).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from snn_perception.models.counting import OpCounter, OpCounts
from snn_perception.models.multithreshold import validate_thresholds


class AnytimeSpiking:
    """Mixed in before the network class; call :meth:`_init_spiking` after the network's ``__init__``."""

    snn_config: Any  # has ``default_timesteps``

    def _init_spiking(self, thresholds: Sequence[float], membrane_init: float) -> None:
        self.thresholds = tuple(thresholds)
        self.membrane_init = float(membrane_init)
        self._counting = False
        self._counter = OpCounter()

    def set_counting(self, enabled: bool) -> None:
        self._counting = bool(enabled)

    def read_counters(self) -> OpCounts:
        return self._counter.result()

    def set_thresholds(self, thresholds: Sequence[float]) -> None:
        """Hot change of the neuron thresholds (normalised units), applied at the next frame."""
        self.thresholds = validate_thresholds(thresholds)

    def forward(self, x: torch.Tensor, timesteps: int | None = None) -> torch.Tensor:
        """The prediction after ``timesteps`` steps (default: the weights' T)."""
        t = int(timesteps or self.snn_config.default_timesteps)
        return self.forward_anytime(x, t, [t])[t]

    def forward_anytime(
        self, x: torch.Tensor, timesteps: int, report: Sequence[int]
    ) -> dict[int, torch.Tensor]:
        """One run of ``timesteps`` steps; the prediction as it stood after each step in ``report``."""
        if timesteps < 1:
            raise ValueError(f"timesteps={timesteps}: must be at least 1")
        bad = [r for r in report if not 1 <= r <= timesteps]
        if bad:
            raise ValueError(f"report steps {bad} outside 1..{timesteps}")
        y = self.multistep_output(x, timesteps)  # [T, B, C, H, W] output-layer current per step
        if list(report) == [timesteps]:
            return {timesteps: self.readout(x, y.mean(0))}
        cum = torch.cumsum(y, dim=0)
        return {r: self.readout(x, cum[r - 1] / r) for r in report}

    def multistep_output(self, x: torch.Tensor, timesteps: int, flows: dict | None = None) -> torch.Tensor:
        raise NotImplementedError

    def readout(self, x: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """The prediction from the output layer's mean current (the input ``x`` for residual heads)."""
        return current


class AnnBaseline:
    """An ANN behind the SpikingModel protocol (``timesteps`` ignored); mixed in before the network
    class, with :meth:`_init_ann` after its ``__init__`` and :meth:`macs_per_image` provided."""

    def _init_ann(self) -> None:
        self._counting = False
        self._macs = 0.0
        self._macs_cache: dict[tuple[int, int], float] = {}

    def macs_per_image(self, h: int, w: int) -> float:
        raise NotImplementedError

    def _count(self, x: torch.Tensor) -> None:
        if self._counting:
            hw = (int(x.shape[-2]), int(x.shape[-1]))
            if hw not in self._macs_cache:
                self._macs_cache[hw] = self.macs_per_image(*hw)
            self._macs = self._macs_cache[hw] * x.shape[0]

    def set_counting(self, enabled: bool) -> None:
        self._counting = bool(enabled)

    def read_counters(self) -> OpCounts:
        return OpCounts(analog_macs=self._macs)
