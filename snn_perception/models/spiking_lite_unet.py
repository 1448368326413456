"""Spiking LiteUNet: the converted LiteUNet run with multi-threshold IF neurons over T steps.

The network is :class:`~snn_perception.models.lite_unet.LiteUNet` without batch-norm (folded at
conversion) and with normalised weights; only the activation sites change:

* the stem convolution runs **once** on the analog image; its output is the constant input current
  of the first neurons for all T steps (static coding);
* every ReLU6 site is a multi-threshold neuron. Its thresholds are in units of the site's scale λ,
  chosen at conversion so that the neuron saturates where ReLU6 clips (or above the 99.9th
  percentile where that comes first): a clipped ReLU is a saturating neuron;
* MBConv projections, the residual stream and the encoder features the decoder reads have no
  neuron: they are **currents**, recomputed each step from the spikes that feed them. A layer
  fed by currents is counted as MACs, a layer fed by spikes as synaptic operations (SOPs);
* the head has no neuron: the prediction is its accumulated current divided by T, so a prediction
  exists after every step (:meth:`SpikingLiteUNet.forward_anytime`).

Also registers ``lite_unet`` (the ANN, for speed and accuracy comparisons through the same engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from snn_perception.models import registry
from snn_perception.models.counting import Conv, conv_ops
from snn_perception.models.folding import fold_conv_bn
from snn_perception.models.lite_unet import (
    LiteUNet,
    LiteUNetConfig,
    block_specs,
    normalise,
    skip_blocks,
    upsample_scores,
)
from snn_perception.models.multithreshold import (
    DEFAULT_THRESHOLDS,
    mt_constant,
    mt_multistep,
    output_scale,
    spiking_flow,
    validate_thresholds,
)
from snn_perception.models.spiking_protocol import AnnBaseline, AnytimeSpiking

ARCH = "spiking_lite_unet"
ANN_ARCH = "lite_unet"


@dataclass
class SpikingLiteUNetConfig:
    net: LiteUNetConfig = field(default_factory=lambda: LiteUNetConfig(batch_norm=False))
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    default_timesteps: int = 4
    #: initial membrane in units of the lowest threshold; 0.5 turns the flow's truncation into
    #: rounding (Bu et al., ICLR 2022), which matters most at short T
    membrane_init: float = 0.5

    def __post_init__(self) -> None:
        if self.net.batch_norm:
            raise ValueError("SpikingLiteUNetConfig.net.batch_norm must be False (folded at conversion)")
        self.thresholds = validate_thresholds(self.thresholds, "SpikingLiteUNetConfig.thresholds")

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> SpikingLiteUNetConfig:
        if not isinstance(meta.get("lite_unet"), dict):
            raise ValueError("metadata lacks the 'lite_unet' dict (num_classes, decoder, stages)")
        net = LiteUNetConfig.from_dict({**meta["lite_unet"], "batch_norm": False})
        return cls(
            net=net,
            thresholds=tuple(meta.get("thresholds", DEFAULT_THRESHOLDS)),
            default_timesteps=int(meta.get("default_timesteps", 4)),
            membrane_init=float(meta.get("membrane_init", 0.5)),
        )


@dataclass(frozen=True)
class Consumer:
    """A layer reading a site's spikes: name, kernel, stride, groups, out channels, and whether a
    nearest ×2 upsampling sits between them (each spike then reaches four input pixels)."""

    layer: str
    kernel: int
    stride: int
    groups: int
    out_channels: int
    upsampled: bool = False
    channels: tuple[int, int] | None = None  # input channel range it occupies in a concatenation


def site_consumers(cfg: LiteUNetConfig) -> dict[str, Consumer]:
    """Every site's spikes feed exactly one layer in this topology."""
    specs = block_specs(cfg.stages)
    table: dict[str, Consumer] = {}
    prev = "stem"
    for i, s in enumerate(specs):
        if s.expand != 1:
            table[f"b{i}.expand"] = Consumer(f"blocks.{i}.dw", s.kernel, s.stride, s.hidden, s.hidden)
        else:  # block 0 reads the stem's spikes directly
            table[prev] = Consumer(f"blocks.{i}.dw", s.kernel, s.stride, s.hidden, s.hidden)
        table[f"b{i}.dw"] = Consumer(f"blocks.{i}.project", 1, 1, 1, s.c_out)
    dec = cfg.decoder
    for j, c in enumerate(dec):
        if j + 1 < len(dec):
            table[f"dec{j}"] = Consumer(f"dec.{j + 1}", 3, 1, 1, dec[j + 1], upsampled=True, channels=(0, c))
        else:
            table[f"dec{j}"] = Consumer("head", 1, 1, 1, cfg.num_classes)
    if "stem" not in table:
        raise ValueError("the first block must have expansion 1 (it reads the stem's spikes)")
    return table


class SpikingLiteUNet(AnytimeSpiking, LiteUNet):
    """Converted LiteUNet; ``forward(x, timesteps)`` follows the registry's SpikingModel protocol."""

    #: counting goes through the fused kernels of :mod:`event_kernels`, and the multi-threshold
    #: neurons, counting or not, through :mod:`neuron_kernels` (the engine warms both)
    uses_counting_kernels = True
    uses_neuron_kernels = True

    def __init__(self, config: SpikingLiteUNetConfig) -> None:
        super().__init__(config.net)
        self.snn_config = config
        self._init_spiking(config.thresholds, config.membrane_init)
        self._consumers = site_consumers(config.net)
        self._mac_cache: dict[tuple[int, int, int], list[tuple[str, float]]] = {}

    def readout(self, x: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """Class scores at the input size (the head runs at half of it)."""
        return upsample_scores(current)

    def prepare_inference(self) -> None:
        """Channels-last weights: oneDNN's depthwise and 1×1 convolutions are much faster."""
        self.to(memory_format=torch.channels_last)

    # -- multi-step simulation

    def multistep_output(self, x: torch.Tensor, timesteps: int, flows: dict | None = None) -> torch.Tensor:
        """Head current of every step, ``[T, B, C, H/2, W/2]`` (``flows`` receives each site's mean
        output over the T steps: its spiking flow)."""
        b = x.shape[0]
        counting = self._counting
        if counting:
            self._counter.reset()
            self._count_currents(x, timesteps)
        v0 = self.membrane_init * self.thresholds[-1] if self.membrane_init else None

        def act(name: str, z: torch.Tensor) -> torch.Tensor:
            events: list[np.ndarray] | None = [] if counting else None  # counted as they fire
            if name == "stem":  # the static first layer: computed once, a constant current
                s = mt_constant(z, timesteps, self.thresholds, v0, defer_scale=counting, events=events)
            else:
                steps = z.reshape(timesteps, b, *z.shape[1:])
                s, _ = mt_multistep(
                    steps, self.thresholds, v0, inplace=True, defer_scale=counting, events=events
                )
            s = s.reshape(timesteps * b, *s.shape[2:])
            if counting:  # else the counting pass counts, and scales the deferred outputs
                self._count_spikes(name, s, events[0] if events else None)
            if flows is not None:
                flows[name] = s.reshape(timesteps, b, *s.shape[1:]).mean(0)
            return s

        y = self.graph(normalise(x), act)
        return y.reshape(timesteps, b, *y.shape[1:])

    def _count_spikes(self, name: str, s: torch.Tensor, events: np.ndarray | None = None) -> None:
        """A graded spike is one event: one accumulate per synapse it reaches (border-exact fan-out,
        through the nearest ×2 upsampling where the decoder reads it). The spikes are reduced once
        to events per pixel (:meth:`OpCounter.graded`); that small map gives the rate and the
        consumer's SOPs, kept on the device until :meth:`read_counters` (no sync per layer)."""
        c = self._consumers[name]
        up = 2 if c.upsampled else 1
        conv = Conv(c.layer, c.out_channels, c.kernel, c.stride, c.kernel // 2, c.groups, up)
        if events is not None:  # the neuron counted its events as it fired, and scaled
            self._counter.graded(name, s, conv, events=events)
            return
        self._counter.graded(name, s, conv, scale=output_scale(self.thresholds))

    def _count_currents(self, x: torch.Tensor, timesteps: int) -> None:
        """MACs of the layers fed by analog values: the stem once, current-fed layers every step."""
        key = (x.shape[-2], x.shape[-1], timesteps)
        if key not in self._mac_cache:
            self._mac_cache[key] = current_macs(self.config, x.shape[-2], x.shape[-1], timesteps)
        for layer, macs in self._mac_cache[key]:
            self._counter.add_macs(macs * x.shape[0], layer)

    # -- fine-tuning by accumulated spiking flow

    def flow_forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        """Differentiable class scores whose value is the SNN's after ``timesteps`` steps.

        The T steps run without autograd, recording each site's mean output; one ANN-like pass
        then rebuilds the graph where every site returns its recorded flow and passes gradient
        where its mean input current is positive. Every layer between sites is linear, so that
        pass's pre-activations are the SNN's mean input currents. Autograd memory: one ANN pass.
        """
        flows: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            self.multistep_output(x, timesteps, flows)
        return upsample_scores(self.graph(normalise(x), lambda name, z: spiking_flow(z, flows[name])))


def current_macs(cfg: LiteUNetConfig, h: int, w: int, timesteps: int) -> list[tuple[str, float]]:
    """(layer, MACs for one image) of every layer fed by analog values, zero-padding taps excluded.

    The stem reads the image once; the expansions read the residual stream, and the decoder reads
    the encoder features (and, in its first stage, the upsampled bottleneck) every step.
    """
    specs = block_specs(cfg.stages)
    out: list[tuple[str, float]] = []
    hh, ww = h, w
    out.append(("stem", conv_ops(torch.ones(1, cfg.in_channels, hh, ww), 32, 3, 2, 1)))
    hh, ww = (hh + 1) // 2, (ww + 1) // 2
    sizes = {}
    for i, s in enumerate(specs):
        if s.expand != 1:
            out.append(
                (f"blocks.{i}.expand", conv_ops(torch.ones(1, s.c_in, hh, ww), s.hidden, 1) * timesteps)
            )
        if s.stride == 2:
            hh, ww = (hh + 1) // 2, (ww + 1) // 2
        sizes[i] = (s.c_out, hh, ww)
    skips = skip_blocks(cfg)
    for j, idx in enumerate(skips):
        c_skip, sh, sw = sizes[idx]
        segs = [c_skip]
        if j == 0:
            segs.append(specs[-1].c_out)  # the bottleneck is a current too
        c_out = cfg.decoder[j]
        macs = sum(conv_ops(torch.ones(1, c, sh, sw), c_out, 3, 1, 1) for c in segs)
        out.append((f"dec.{j}", macs * timesteps))
    return out


def _build(meta: dict[str, Any]) -> SpikingLiteUNet:
    if meta.get("task") not in (None, "segment"):
        raise ValueError(f"task {meta.get('task')!r}: expected 'segment'")
    return SpikingLiteUNet(SpikingLiteUNetConfig.from_metadata(meta))


class AnnLiteUNet(AnnBaseline, LiteUNet):
    """The ANN behind the SpikingModel protocol (``timesteps`` ignored): a baseline for bench."""

    def __init__(self, config: LiteUNetConfig) -> None:
        super().__init__(config)
        self._init_ann()

    def forward(self, x: torch.Tensor, timesteps: int | None = None) -> torch.Tensor:  # type: ignore[override]
        self._count(x)
        return super().forward(x)

    def macs_per_image(self, h: int, w: int) -> float:
        return ann_macs(self.config, h, w)

    def prepare_inference(self) -> None:
        """Inference only: batch-norm folded into the convolutions, channels-last weights."""
        fold_batchnorm_(self)
        self.to(memory_format=torch.channels_last)


@torch.no_grad()
def fold_batchnorm_(model: LiteUNet) -> None:
    """Fold every eval-mode batch-norm into the convolution before it, in place (the outputs stay
    the same to float rounding; the network can no longer be trained)."""
    for mod in model.modules():
        if (
            isinstance(mod, torch.nn.Sequential)
            and len(mod) == 2
            and isinstance(mod[1], torch.nn.BatchNorm2d)
        ):
            w, b = fold_conv_bn(mod[0], mod[1])
            mod[0].weight.copy_(w)
            mod[0].bias = torch.nn.Parameter(b, requires_grad=False)
            mod[1] = torch.nn.Identity()


def ann_macs(cfg: LiteUNetConfig, h: int, w: int) -> float:
    """Dense multiply-accumulates of one ANN pass (zero-padding taps excluded), counted by hooks."""
    model = LiteUNet(LiteUNetConfig.from_dict({**cfg.to_dict(), "batch_norm": False}))
    total = [0.0]

    def hook(mod: torch.nn.Conv2d, inp: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        ones = torch.ones_like(inp[0][:1])
        total[0] += conv_ops(
            ones, mod.out_channels, mod.kernel_size[0], mod.stride[0], mod.padding[0], mod.groups
        )

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, cfg.in_channels, h, w))
    for hd in handles:
        hd.remove()
    return total[0]


def _build_ann(meta: dict[str, Any]) -> AnnLiteUNet:
    if not isinstance(meta.get("lite_unet"), dict):
        raise ValueError("metadata lacks the 'lite_unet' dict (num_classes, decoder, stages)")
    return AnnLiteUNet(LiteUNetConfig.from_dict(meta["lite_unet"]))


registry.register(ARCH, _build)
registry.register(ANN_ARCH, _build_ann)

__all__ = ["ANN_ARCH", "ARCH", "AnnLiteUNet", "SpikingLiteUNet", "SpikingLiteUNetConfig", "site_consumers"]
