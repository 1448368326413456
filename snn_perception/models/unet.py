"""ANN U-Net built to be converted into a Spiking-UNet.

Conversion-friendly choices (Spiking-UNet paper, section 3.1): **average** pooling (a linear
operation a spiking layer can reproduce), ReLU everywhere a neuron will sit (also after each
transposed convolution, so every concatenated segment is a neuron's spike train), no ops other
than conv / batch-norm / ReLU / avg-pool / concatenation. Batch-norm only speeds up training; it
is folded into the convolutions at conversion.

Activation **sites** (where the SNN puts a multi-threshold neuron) have fixed names so that
calibration and conversion can talk about them: ``enc{i}.a1``, ``enc{i}.a2``, ``pool{i}``,
``up{i}``, ``dec{i}.a1``, ``dec{i}.a2``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("segment", "denoise")
WIDTHS = (8, 16, 32, 64)
DEPTH = 4  # poolings; inputs must be multiples of 2**DEPTH


@dataclass
class UNetConfig:
    """Everything that fixes the tensor shapes; stored in checkpoint metadata."""

    width: int = 16
    num_classes: int = 8  # output channels for head='segment'; denoise always predicts 3
    head: str = "segment"
    batch_norm: bool = True
    in_channels: int = 3

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise ValueError(f"UNetConfig.width={self.width}: must be positive (typical: {WIDTHS})")
        if self.head not in HEADS:
            raise ValueError(f"UNetConfig.head={self.head!r}: expected one of {HEADS}")
        if self.head == "segment" and self.num_classes < 2:
            raise ValueError(f"UNetConfig.num_classes={self.num_classes}: segmentation needs at least 2")

    @property
    def out_channels(self) -> int:
        return self.num_classes if self.head == "segment" else self.in_channels

    @property
    def channels(self) -> list[int]:
        return [self.width * 2**i for i in range(DEPTH + 1)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UNetConfig:
        keys = cls.__dataclass_fields__
        return cls(**{k: d[k] for k in keys if k in d})


class DoubleConv(nn.Module):
    """Two 3×3 conv (+BN) + ReLU pairs."""

    def __init__(self, c_in: int, c_out: int, batch_norm: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()


def site_names() -> list[str]:
    """Neuron sites in execution order."""
    names = []
    for i in range(DEPTH + 1):
        names += [f"enc{i}.a1", f"enc{i}.a2"]
        if i < DEPTH:
            names.append(f"pool{i}")
    for i in range(DEPTH):
        names += [f"up{i}", f"dec{i}.a1", f"dec{i}.a2"]
    return names


class UNet(nn.Module):
    """Four down and four up stages; ``forward`` returns class scores or the denoised image."""

    size_multiple = 2**DEPTH

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        ch = config.channels
        bn = config.batch_norm
        self.enc = nn.ModuleList(
            [DoubleConv(config.in_channels if i == 0 else ch[i - 1], ch[i], bn) for i in range(DEPTH + 1)]
        )
        # up[i] / dec[i] go from level DEPTH-i to level DEPTH-i-1
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(ch[DEPTH - i], ch[DEPTH - i - 1], 2, stride=2) for i in range(DEPTH)]
        )
        self.dec = nn.ModuleList(
            [DoubleConv(2 * ch[DEPTH - i - 1], ch[DEPTH - i - 1], bn) for i in range(DEPTH)]
        )
        self.head = nn.Conv2d(ch[0], config.out_channels, 1)

    def forward(self, x: torch.Tensor, taps: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``x``: ``[B, 3, H, W]`` in [0, 1]. ``taps``, when given, receives every site's activation."""

        def act(name: str, z: torch.Tensor) -> torch.Tensor:
            a = F.relu(z)
            if taps is not None:
                taps[name] = a
            return a

        out = self.graph(x, act)
        return x - out if self.config.head == "denoise" else out

    def graph(self, x: torch.Tensor, act: Callable[[str, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The network with ``act(site, pre_activation)`` at every site; returns the output layer.

        ANN: ``act`` is ReLU. The Spiking-UNet passes multi-threshold neurons (multi-step tensors
        ``[T·B, ...]`` flow through the same convolutions) or spiking-flow functions (fine-tuning),
        so the topology is written once.
        """
        skips = []
        h = x
        for i, block in enumerate(self.enc):
            h = act(f"enc{i}.a1", block.bn1(block.conv1(h)))
            h = act(f"enc{i}.a2", block.bn2(block.conv2(h)))
            if i < DEPTH:
                skips.append(h)
                h = act(f"pool{i}", self.pool(h))
        for i in range(DEPTH):
            u = act(f"up{i}", self.up[i](h))
            block = self.dec[i]
            h = torch.cat([skips[DEPTH - 1 - i], u], dim=1)
            h = act(f"dec{i}.a1", block.bn1(block.conv1(h)))
            h = act(f"dec{i}.a2", block.bn2(block.conv2(h)))
        return self.head(h)

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(h, 2)

    def head_output(self, x: torch.Tensor) -> torch.Tensor:
        """Raw output layer (class scores, or the predicted noise map for denoising)."""
        return self.graph(x, lambda _name, z: F.relu(z))


def concat_inputs(i: int) -> tuple[str, str]:
    """The two producer sites of decoder stage ``i``'s concatenation, in channel order."""
    return f"enc{DEPTH - 1 - i}.a2", f"up{i}"


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def class_ids(scores: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Per pixel, the class with the highest score (the first one on ties, as ``argmax``).

    ``max(dim).indices`` rather than ``argmax(dim)``: on CPUs PyTorch's ``argmax`` over a dimension
    that is not the innermost is ~12× slower for the same result (8 classes at 480×640: 73 ms
    against 4 ms), which was a third of a segmentation frame.
    """
    return scores.max(dim).indices
