"""Spiking-UNet: the converted U-Net run with multi-threshold IF neurons over T steps.

The network is :class:`~snn_perception.models.unet.UNet` without batch-norm (folded at
conversion) and with the normalised weights; only the activation sites change:

* the first convolution runs **once** on the analog image; its output is the constant input
  current of the first neurons for all T steps (static coding);
* every other site is a multi-threshold neuron fed by the previous layer's spikes;
* the output layer has no neuron: the prediction is its accumulated current divided by T, so a
  prediction exists after every step (:meth:`SpikingUNet.forward_anytime`).

Multi-step execution: convolutions are stateless, so each runs once over ``[T·B, ...]`` and only
the neurons loop over T (SpikingJelly's multi-step mode; the fast way on a CPU).

Also registers ``unet`` (the ANN, for speed and accuracy comparisons through the same engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from snn_perception.models import registry
from snn_perception.models.counting import Conv, Dense, OpCounter, conv_ops
from snn_perception.models.fan_out import dense_conv_macs
from snn_perception.models.multithreshold import (
    DEFAULT_THRESHOLDS,
    mt_constant,
    mt_multistep,
    output_scale,
    spiking_flow,
    validate_thresholds,
)
from snn_perception.models.spiking_protocol import AnnBaseline, AnytimeSpiking
from snn_perception.models.unet import DEPTH, UNet, UNetConfig, site_names

ARCH = "spiking_unet"
ANN_ARCH = "unet"


@dataclass
class SpikingUNetConfig:
    unet: UNetConfig = field(default_factory=lambda: UNetConfig(batch_norm=False))
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    default_timesteps: int = 4
    #: initial membrane potential in units of the lowest threshold. 0 is the paper's neuron; 0.5
    #: turns the flow's truncation into rounding (Bu et al., ICLR 2022), removing a per-layer bias
    membrane_init: float = 0.0

    def __post_init__(self) -> None:
        if self.unet.batch_norm:
            raise ValueError(
                "SpikingUNetConfig.unet.batch_norm must be False (batch-norm is folded at conversion)"
            )
        self.thresholds = validate_thresholds(self.thresholds, "SpikingUNetConfig.thresholds")

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> SpikingUNetConfig:
        if "unet" not in meta or not isinstance(meta["unet"], dict):
            raise ValueError("metadata lacks the 'unet' dict (width, num_classes, head)")
        ucfg = UNetConfig.from_dict({**meta["unet"], "batch_norm": False})
        return cls(
            unet=ucfg,
            thresholds=tuple(meta.get("thresholds", DEFAULT_THRESHOLDS)),
            default_timesteps=int(meta.get("default_timesteps", 4)),
            membrane_init=float(meta.get("membrane_init", 0.0)),
        )


def site_consumers(cfg: UNetConfig) -> dict[str, list[tuple[str, str, int, int, int]]]:
    """site → [(layer, kind, kernel, padding, out_channels)] of the layers its spikes reach.

    kind: 'conv' (stride 1), 'tconv' (stride = kernel) or 'pool' (2×2 average, fan-out 1).
    """
    ch = cfg.channels
    table: dict[str, list[tuple[str, str, int, int, int]]] = {}
    for i in range(DEPTH + 1):
        table[f"enc{i}.a1"] = [(f"enc.{i}.conv2", "conv", 3, 1, ch[i])]
        if i < DEPTH:
            table[f"enc{i}.a2"] = [
                (f"pool{i}", "pool", 2, 0, ch[i]),
                (f"dec.{DEPTH - 1 - i}.conv1", "conv", 3, 1, ch[i]),
            ]
            table[f"pool{i}"] = [(f"enc.{i + 1}.conv1", "conv", 3, 1, ch[i + 1])]
        else:
            table[f"enc{i}.a2"] = [("up.0", "tconv", 2, 0, ch[DEPTH - 1])]
    for i in range(DEPTH):
        c = ch[DEPTH - 1 - i]
        table[f"up{i}"] = [(f"dec.{i}.conv1", "conv", 3, 1, c)]
        table[f"dec{i}.a1"] = [(f"dec.{i}.conv2", "conv", 3, 1, c)]
        table[f"dec{i}.a2"] = (
            [(f"up.{i + 1}", "tconv", 2, 0, ch[DEPTH - 2 - i])]
            if i < DEPTH - 1
            else [("head", "conv", 1, 0, cfg.out_channels)]
        )
    return table


class SpikingUNet(AnytimeSpiking, UNet):
    """Converted U-Net; ``forward(x, timesteps)`` follows the registry's SpikingModel protocol."""

    #: counting goes through the fused kernels of :mod:`event_kernels`, and the multi-threshold
    #: neurons, counting or not, through :mod:`neuron_kernels` (the engine warms both)
    uses_counting_kernels = True
    uses_neuron_kernels = True

    def __init__(self, config: SpikingUNetConfig) -> None:
        super().__init__(config.unet)
        self.snn_config = config
        self._init_spiking(config.thresholds, config.membrane_init)
        self._consumers = site_consumers(config.unet)
        #: site → the layers its spikes feed, as counter consumers
        self._fan_outs: dict[str, tuple[Conv | Dense, ...]] = {
            site: tuple(
                Conv(layer, c_out, k, 1, pad)
                if kind == "conv"
                else Dense(layer, c_out * k * k if kind == "tconv" else 1)
                for layer, kind, k, pad, c_out in consumers
            )
            for site, consumers in self._consumers.items()
        }

    def readout(self, x: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """Class scores, or the denoised image (the head predicts the noise)."""
        return x - current if self.config.head == "denoise" else current

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        """2×2 average as three adds (≈2.5× faster than avg_pool2d on [T·B, ...] CPU tensors)."""
        if h.shape[-2] % 2 or h.shape[-1] % 2:
            return F.avg_pool2d(h, 2)
        return (h[..., 0::2, 0::2] + h[..., 1::2, 0::2] + h[..., 0::2, 1::2] + h[..., 1::2, 1::2]) * 0.25

    # -- multi-step simulation

    def multistep_output(self, x: torch.Tensor, timesteps: int, flows: dict | None = None) -> torch.Tensor:
        """Output-layer current of every step, ``[T, B, C, H, W]``.

        ``flows``, when given, receives each site's mean output over the T steps (its spiking flow).
        """
        b = x.shape[0]
        counting = self._counting
        if counting:
            self._counter.reset()
            # the static first convolution: one dense pass of MACs, not T
            self._counter.add_macs(dense_conv_macs(x.shape, self.config.channels[0], 3, 1, 1), "enc.0.conv1")

        def act(name: str, z: torch.Tensor) -> torch.Tensor:
            v0 = self.membrane_init * self.thresholds[-1] if self.membrane_init else None
            events: list[np.ndarray] | None = [] if counting else None  # counted as they fire
            if z.shape[0] == b and name == "enc0.a1":
                s = mt_constant(z, timesteps, self.thresholds, v0, defer_scale=counting, events=events)
            else:
                steps = z.reshape(timesteps, b, *z.shape[1:])
                s, _ = mt_multistep(
                    steps, self.thresholds, v0, inplace=True, defer_scale=counting, events=events
                )
            s = s.reshape(timesteps * b, *s.shape[2:])
            if counting:  # else the counting pass counts, and scales the deferred outputs
                self._count(name, s, events[0] if events else None)
            if flows is not None:
                flows[name] = s.reshape(timesteps, b, *s.shape[1:]).mean(0)
            return s

        y = self.graph(x, act)
        return y.reshape(timesteps, b, *y.shape[1:])

    def _count(self, name: str, s: torch.Tensor, events: np.ndarray | None = None) -> None:
        """A graded spike is one event: one accumulate per synapse it reaches (convolutions with
        border-exact fan-out, transposed convolutions C_out·k², the 2×2 average pooling 1). The
        spikes are reduced once to events per pixel (:meth:`OpCounter.graded`); that small map
        gives the rate and every consumer's SOPs, kept on the device until :meth:`read_counters`."""
        if events is not None:  # the neuron counted its events as it fired, and scaled
            self._counter.graded(name, s, *self._fan_outs[name], events=events)
            return
        self._counter.graded(name, s, *self._fan_outs[name], scale=output_scale(self.thresholds))

    # -- fine-tuning by accumulated spiking flow

    def flow_forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        """Differentiable prediction whose value is the SNN's after ``timesteps`` steps.

        The T steps run without autograd, recording each site's mean output flow; one ANN-like
        pass then rebuilds the graph where every site returns its recorded flow and lets the
        gradient through where its mean input current (the pre-activation of that pass, which
        equals the SNN's accumulated input / T because every layer is linear) is positive.
        Autograd memory is one ANN pass, whatever T.
        """
        flows: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            self.multistep_output(x, timesteps, flows)
        out = self.graph(x, lambda name, z: spiking_flow(z, flows[name]))
        return x - out if self.config.head == "denoise" else out


def _check_meta(meta: dict[str, Any]) -> None:
    if meta.get("task") not in (None, "segment", "denoise"):
        raise ValueError(f"task {meta.get('task')!r}: expected 'segment' or 'denoise'")


def build_spiking_unet(meta: dict[str, Any]) -> SpikingUNet:
    _check_meta(meta)
    return SpikingUNet(SpikingUNetConfig.from_metadata(meta))


class AnnUNet(AnnBaseline, UNet):
    """The ANN behind the SpikingModel protocol (``timesteps`` ignored): a baseline for bench."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__(config)
        self._init_ann()

    def forward(self, x: torch.Tensor, timesteps: int | None = None) -> torch.Tensor:
        self._count(x)
        return super().forward(x)

    def macs_per_image(self, h: int, w: int) -> float:
        return ann_macs(self.config, 1, h, w)


def ann_macs(cfg: UNetConfig, b: int, h: int, w: int) -> float:
    """Dense multiply-accumulates of one ANN pass (zero-padding taps excluded)."""
    counter = OpCounter()
    model = UNet(UNetConfig(**{**cfg.to_dict(), "batch_norm": False}))

    def act(name: str, z: torch.Tensor) -> torch.Tensor:
        for layer, kind, k, pad, c_out in site_consumers(cfg)[name]:
            ones = torch.ones_like(z[:1])
            if kind == "conv":
                counter.add_macs(conv_ops(ones, c_out, k, 1, pad) * b, layer)
            elif kind == "tconv":
                counter.add_macs(ones.numel() * c_out * k * k * b, layer)
        return F.relu(z)

    with torch.no_grad():
        x = torch.zeros(1, cfg.in_channels, h, w)
        counter.add_macs(conv_ops(torch.ones_like(x), cfg.channels[0], 3, 1, 1) * b, "enc.0.conv1")
        model.graph(x, act)
    return counter.macs


def build_ann_unet(meta: dict[str, Any]) -> AnnUNet:
    _check_meta(meta)
    if "unet" not in meta:
        raise ValueError("metadata lacks the 'unet' dict (width, num_classes, head, batch_norm)")
    return AnnUNet(UNetConfig.from_dict(meta["unet"]))


registry.register(ARCH, build_spiking_unet)
registry.register(ANN_ARCH, build_ann_unet)

__all__ = ["ANN_ARCH", "ARCH", "AnnUNet", "SpikingUNet", "SpikingUNetConfig", "site_consumers", "site_names"]
