"""Exponential moving average (EMA) of a network's weights for training on few pairs.

With a few dozen training pairs the validation loss jumps from epoch to epoch and the
"best epoch" is partly luck; an average of the weights over the last ~1/(1 − decay) steps
is smoother and usually generalises better. Every floating-point entry of the state dict
is averaged (parameters and BatchNorm running statistics, as timm's ModelEmaV2 does);
integer buffers (``num_batches_tracked``) are copied.
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """An EMA copy of ``model``, updated after every optimiser step with :meth:`update`.

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates so a
    run from random weights is not dominated by its initialisation.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = self.current_decay()
        ours, theirs = self.model.state_dict(), model.state_dict()
        for key, avg in ours.items():
            value = theirs[key].detach()
            if avg.is_floating_point():
                avg.lerp_(value, 1.0 - d)
            else:
                avg.copy_(value)
        self.updates += 1

    def state_dict(self) -> dict:
        """Weights and update count: tensors only, so it loads with ``weights_only=True``."""
        return {"model": self.model.state_dict(), "updates": torch.tensor(self.updates)}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
