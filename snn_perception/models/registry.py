"""Name → builder registry, so every model can be built from a checkpoint's metadata.

A builder takes the checkpoint metadata (a plain dict) and returns an ``nn.Module``
that follows :class:`SpikingModel`. Model modules register themselves on import;
:func:`build` imports the known model modules lazily.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from snn_perception.models.counting import OpCounts

Builder = Callable[[dict[str, Any]], nn.Module]

_BUILDERS: dict[str, Builder] = {}
#: Modules that register builders; imported on first use of the registry.
_MODEL_MODULES = (
    "snn_perception.models.dhz",
    "snn_perception.models.spiking_unet",
    "snn_perception.models.spiking_lite_unet",
)


@runtime_checkable
class SpikingModel(Protocol):
    """What the runtime engine needs from a model.

    ``forward(x, timesteps)`` takes ``x`` as ``[B, 3, H, W]`` RGB in [0, 1] with H and W
    multiples of ``size_multiple`` and returns ``[B, C, H, W]``: the restored image for
    dehazing (C = 3, unclamped) or per-class scores for segmentation.
    """

    size_multiple: int

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor: ...

    def set_counting(self, enabled: bool) -> None: ...

    def read_counters(self) -> OpCounts: ...


def register(arch: str, builder: Builder) -> None:
    _BUILDERS[arch] = builder


def _load_known() -> None:
    for name in _MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a model module not written yet
            if exc.name != name:
                raise


def available() -> list[str]:
    _load_known()
    return sorted(_BUILDERS)


def build(arch: str, metadata: dict[str, Any]) -> nn.Module:
    _load_known()
    if arch not in _BUILDERS:
        raise KeyError(f"unknown architecture {arch!r}; known: {', '.join(sorted(_BUILDERS)) or 'none'}")
    return _BUILDERS[arch](metadata)
