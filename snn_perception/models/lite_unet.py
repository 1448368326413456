"""LiteUNet: a U-Net on an EfficientNet-Lite0-shaped encoder, built to be converted to spiking.

Encoder: a 3×3/2 stem and 16 MBConv blocks (expand 1×1 → depthwise k×k → project 1×1, residual
when the shape allows), ReLU6, no squeeze-excite: the Lite0 layout, so ImageNet weights map onto
it one to one (:mod:`snn_perception.offline.pretrained`). Decoder: four stages of nearest ×2
upsampling, concatenation with the stride-16/8/4/2 encoder features, 3×3 conv-BN-ReLU6; a 1×1
head; the class scores are upsampled ×2 (bilinear) to the input size.

Conversion-friendly choices: every non-linearity is a clipped ReLU (a saturating spiking neuron),
upsampling inside the network is *nearest* (a spike stays a spike; bilinear would turn it into a
weighted value), and tensors without a non-linearity (MBConv projections, the residual stream, the
encoder features the decoder reads) stay linear: in the spiking network they are currents.

Activation **sites** have fixed names so that calibration, conversion and counting can talk
about them: ``stem``, ``b{i}.expand`` (absent where the expansion is 1), ``b{i}.dw``, ``dec{j}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: (kernel, expansion, out channels, repeats, stride) of each Lite0 stage
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 16, 1, 1),
    (3, 6, 24, 2, 2),
    (5, 6, 40, 2, 2),
    (3, 6, 80, 3, 2),
    (5, 6, 112, 3, 1),
    (5, 6, 192, 4, 2),
    (3, 6, 320, 1, 1),
)
STEM_CHANNELS = 32
#: input normalisation the pretrained encoder expects: (x - 0.5) / 0.5, i.e. RGB in [-1, 1]
INPUT_MEAN, INPUT_STD = 0.5, 0.5


@dataclass(frozen=True)
class BlockSpec:
    c_in: int
    c_out: int
    kernel: int
    expand: int
    stride: int

    @property
    def hidden(self) -> int:
        return self.c_in * self.expand

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.c_in == self.c_out


def block_specs(stages: tuple[tuple[int, int, int, int, int], ...] = LITE0_STAGES) -> list[BlockSpec]:
    specs, c_in = [], STEM_CHANNELS
    for k, e, c_out, repeats, stride in stages:
        for r in range(repeats):
            specs.append(BlockSpec(c_in, c_out, k, e, stride if r == 0 else 1))
            c_in = c_out
    return specs


@dataclass
class LiteUNetConfig:
    """Everything that fixes the tensor shapes; stored in checkpoint metadata."""

    num_classes: int = 8
    decoder: tuple[int, ...] = (96, 64, 40, 24)
    batch_norm: bool = True
    clip: float = 6.0  # ReLU6
    in_channels: int = 3
    stages: tuple[tuple[int, int, int, int, int], ...] = field(default=LITE0_STAGES)

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"LiteUNetConfig.num_classes={self.num_classes}: segmentation needs at least 2")
        self.decoder = tuple(int(c) for c in self.decoder)
        self.stages = tuple(tuple(int(v) for v in s) for s in self.stages)  # type: ignore[assignment]
        if len(self.decoder) != 4 or min(self.decoder) < 1:
            raise ValueError(f"LiteUNetConfig.decoder={self.decoder}: four positive channel counts")
        if sum(s[4] == 2 for s in self.stages) != 4:
            raise ValueError(
                "LiteUNetConfig.stages: the encoder must have four stride-2 stages after the stem"
            )
        if not self.clip > 0:
            raise ValueError(f"LiteUNetConfig.clip={self.clip}: must be positive (6 for ReLU6)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["decoder"], d["stages"] = list(self.decoder), [list(s) for s in self.stages]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LiteUNetConfig:
        keys = cls.__dataclass_fields__
        return cls(**{k: (tuple(tuple(s) for s in d[k]) if k == "stages" else d[k]) for k in keys if k in d})


def _bn(c: int, on: bool) -> nn.Module:
    return nn.BatchNorm2d(c, eps=1e-3) if on else nn.Identity()


class ConvBN(nn.Sequential):
    """Conv (no bias when a BN follows) + BN; after folding, a conv with bias and an Identity."""

    def __init__(
        self, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, bn: bool = True
    ) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=not bn),
            _bn(c_out, bn),
        )

    @property
    def conv(self) -> nn.Conv2d:
        return self[0]  # type: ignore[return-value]


class MBConv(nn.Module):
    def __init__(self, spec: BlockSpec, bn: bool) -> None:
        super().__init__()
        self.spec = spec
        self.expand = ConvBN(spec.c_in, spec.hidden, 1, bn=bn) if spec.expand != 1 else None
        self.dw = ConvBN(spec.hidden, spec.hidden, spec.kernel, spec.stride, groups=spec.hidden, bn=bn)
        self.project = ConvBN(spec.hidden, spec.c_out, 1, bn=bn)


Act = Callable[[str, torch.Tensor], torch.Tensor]


def site_names(cfg: LiteUNetConfig) -> list[str]:
    """Neuron sites in execution order."""
    names = ["stem"]
    for i, spec in enumerate(block_specs(cfg.stages)):
        if spec.expand != 1:
            names.append(f"b{i}.expand")
        names.append(f"b{i}.dw")
    return names + [f"dec{j}" for j in range(len(cfg.decoder))]


def skip_blocks(cfg: LiteUNetConfig) -> list[int]:
    """Indices of the blocks whose outputs the decoder reads (stride 2, 4, 8, 16: the last block
    before each of the last four stride-2 blocks), deepest first."""
    specs = block_specs(cfg.stages)
    strided = [i for i, s in enumerate(specs) if s.stride == 2]
    return [i - 1 for i in reversed(strided)]


class LiteUNet(nn.Module):
    """``forward(x)``: ``[B, 3, H, W]`` RGB in [0, 1] (H, W multiples of 32) → class scores."""

    size_multiple = 32

    def __init__(self, config: LiteUNetConfig) -> None:
        super().__init__()
        self.config = config
        bn = config.batch_norm
        self.specs = block_specs(config.stages)
        self.stem = ConvBN(config.in_channels, STEM_CHANNELS, 3, 2, bn=bn)
        self.blocks = nn.ModuleList(MBConv(s, bn) for s in self.specs)
        skips = skip_blocks(config)
        c_prev = self.specs[-1].c_out
        self.dec = nn.ModuleList()
        for j, c in enumerate(config.decoder):
            self.dec.append(ConvBN(c_prev + self.specs[skips[j]].c_out, c, 3, bn=bn))
            c_prev = c
        self.head = nn.Conv2d(c_prev, config.num_classes, 1)

    def forward(self, x: torch.Tensor, taps: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Class scores at the input size. ``taps``, when given, receives every site's activation."""
        clip = self.config.clip

        def act(name: str, z: torch.Tensor) -> torch.Tensor:
            a = F.relu6(z) if clip == 6.0 else z.clamp(0.0, clip)
            if taps is not None:
                taps[name] = a
            return a

        return upsample_scores(self.graph(normalise(x), act))

    def graph(
        self, x: torch.Tensor, act: Act, up: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """The network on a normalised input with ``act(site, pre_activation)`` at every site;
        returns the head's output at half the input size.

        The ANN passes clipped ReLUs; the spiking network passes multi-threshold neurons over
        multi-step tensors ``[T·B, ...]`` (the layers are stateless), and fine-tuning passes
        spiking-flow functions, so the topology is written once. ``up`` is the ×2 upsampling of
        the decoder (nearest by default).
        """
        up = up or upsample_nearest
        h = act("stem", self.stem(x))
        feats: dict[int, torch.Tensor] = {}
        for i, (spec, block) in enumerate(zip(self.specs, self.blocks, strict=True)):
            z = act(f"b{i}.expand", block.expand(h)) if block.expand is not None else h
            z = act(f"b{i}.dw", block.dw(z))
            z = block.project(z)
            h = h + z if spec.residual else z
            feats[i] = h
        for j, idx in enumerate(skip_blocks(self.config)):
            h = act(f"dec{j}", self.dec[j](torch.cat([up(h), feats[idx]], dim=1)))
        return self.head(h)


def normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - INPUT_MEAN) * (1.0 / INPUT_STD)


def upsample_nearest(h: torch.Tensor) -> torch.Tensor:
    return F.interpolate(h, scale_factor=2.0, mode="nearest")


def upsample_scores(y: torch.Tensor) -> torch.Tensor:
    return F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
