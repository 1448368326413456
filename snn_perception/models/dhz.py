"""snnTrans-DHZ: spiking transformer for underwater dehazing (plain PyTorch, no spikingjelly).

Two variants from one implementation:

* ``official`` reproduces the published code and checkpoint: neurons never reset, and each of the
  six transformer blocks per branch receives the same input with only the last block's output
  used (blocks 0–4 are dead weight; they are kept so the state dict loads, but never run);
* ``paper`` chains the six blocks as the paper describes, optionally with a subtractive reset.

Module and parameter names match the official code, so its state dict loads unchanged.
Tensors inside the network are multi-step with time folded into the batch, ``[T*B, C, H, W]``
(time-major), so stateless layers run once over all steps and only neurons loop over T; unlike
the official code this keeps samples independent for batches larger than one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from snn_perception.models import registry
from snn_perception.models.checkpointing import stage
from snn_perception.models.colour import rgb_to_lab_scaled
from snn_perception.models.counting import Conv, Dense, OpCounter, OpCounts, active_counter, counting
from snn_perception.models.dhz_blocks import (  # noqa: F401  (SpikingMLP, _fire_pool_constant: tests)
    SpikingMLP,
    TransformerBlock,
    _fire_pool_constant,
    _lif,
    _lif_pool,
)
from snn_perception.models.fan_out import dense_conv_macs
from snn_perception.models.neurons import ALIF, Reset, leaky_readout
from snn_perception.models.timesteps import MAX_TIMESTEPS

Variant = Literal["official", "paper"]
#: how the two leaky read-outs turn T steps into one value: the published ``leaky`` membrane (its
#: scale grows with T, so weights suit one T) or ``normalized`` (a weighted mean at every T: anytime)
Readout = Literal["leaky", "normalized"]


@dataclass(frozen=True)
class DHZConfig:
    """Architecture switches; the defaults are the published model."""

    variant: Variant = "official"
    reset: Reset = "none"
    dim: int = 64
    heads: int = 8
    blocks: int = 6
    tau: float = 2.0
    v_threshold: float = 0.25
    surrogate_alpha: float = 4.0
    readout: Readout = "leaky"

    def __post_init__(self) -> None:
        if self.readout not in ("leaky", "normalized"):
            raise ValueError(f"DHZ readout must be 'leaky' or 'normalized', got {self.readout!r}")
        if self.variant not in ("official", "paper"):
            raise ValueError(f"DHZ variant must be 'official' or 'paper', got {self.variant!r}")
        if self.variant == "official" and self.reset != "none":
            raise ValueError("the 'official' DHZ variant has no neuron reset; use variant='paper'")
        for name in ("dim", "heads", "blocks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DHZ {name} must be a positive integer, got {value!r}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be divisible by heads {self.heads}")


# ----------------------------------------------------------------------------- helpers


def _readout(cfg: DHZConfig, seq: torch.Tensor, steps: tuple[int, ...] | None) -> torch.Tensor:
    return leaky_readout(seq, cfg.tau, normalized=cfg.readout == "normalized", steps=steps)


class SpikeCoder(nn.Module):
    """Conv 3→16 computed once, its current fed for T steps into an ALIF, 2×2 max-pool."""

    def __init__(self, cfg: DHZConfig) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1)
        self.lif1 = ALIF(cfg.tau, cfg.v_threshold, cfg.reset, cfg.surrogate_alpha)

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        cnt = active_counter()
        if cnt is not None:
            cnt.add_macs(dense_conv_macs(x.shape, 16, 3, 1, 1), self.conv1.layer_name)
        return _lif_pool(self.lif1, self.conv1(x), timesteps, constant=True)


class KEstimator(nn.Module):
    """Per colour space: two conv/ALIF/pool stages and the transformer; shared spiking decoder."""

    def __init__(self, cfg: DHZConfig) -> None:
        super().__init__()
        self.cfg = cfg

        def lif() -> ALIF:
            return ALIF(cfg.tau, cfg.v_threshold, cfg.reset, cfg.surrogate_alpha)

        for p in ("r", "l"):
            setattr(self, f"{p}_conv1_Hx", nn.Conv2d(16, 32, kernel_size=3, padding=1))
            setattr(self, f"{p}_lif1_Hx", lif())
            setattr(self, f"{p}_conv2_Hx", nn.Conv2d(32, cfg.dim, kernel_size=3, padding=1))
            setattr(self, f"{p}_lif2_Hx", lif())
            blocks = nn.ModuleList(TransformerBlock(cfg.dim, cfg.heads, cfg) for _ in range(cfg.blocks))
            setattr(self, f"{p}_snn_trans_Lx", blocks)
        self.up1_Hx = nn.ConvTranspose2d(2 * cfg.dim, 32, kernel_size=2, stride=2)
        self.lif_up1_Hx = lif()
        self.up2_Hx = nn.ConvTranspose2d(96, 16, kernel_size=2, stride=2)
        self.lif_up2_Hx = lif()
        self.up3_Hx = nn.ConvTranspose2d(48, 3, kernel_size=2, stride=2)
        #: read the output out after each of these steps too (see :meth:`SnnTransDHZ.forward_steps`)
        self.readout_steps: tuple[int, ...] | None = None
        #: recompute each encoder branch and the decoder in backward (see :mod:`.checkpointing`)
        self.grad_checkpointing = False

    def _encode(self, p: str, sc: torch.Tensor, timesteps: int) -> tuple[torch.Tensor, torch.Tensor]:
        conv1, conv2 = getattr(self, f"{p}_conv1_Hx"), getattr(self, f"{p}_conv2_Hx")
        d1 = _lif_pool(getattr(self, f"{p}_lif1_Hx"), conv1(sc), timesteps)
        d2 = _lif_pool(getattr(self, f"{p}_lif2_Hx"), conv2(d1), timesteps)
        cnt = active_counter()
        if cnt is not None:
            cnt.fan_out(cnt.measure(sc), Conv(conv1.layer_name, conv1.out_channels, 3, 1, 1))
            cnt.fan_out(cnt.measure(d1), Conv(conv2.layer_name, conv2.out_channels, 3, 1, 1))
        blocks = getattr(self, f"{p}_snn_trans_Lx")
        if self.cfg.variant == "official":  # every block sees d2; only the last one's output is used
            return d1, blocks[-1](d2, timesteps)
        y = d2
        for blk in blocks:
            y = blk(y, timesteps)
        return d1, y

    def forward(self, sc_rgb: torch.Tensor, sc_lab: torch.Tensor, timesteps: int) -> torch.Tensor:
        on = self.grad_checkpointing and active_counter() is None
        d1_r, y_r = stage(self, on, self._encode, "r", sc_rgb, timesteps)
        d1_l, y_l = stage(self, on, self._encode, "l", sc_lab, timesteps)
        return stage(self, on, self._decode, sc_rgb, sc_lab, d1_r, d1_l, y_r, y_l, timesteps)

    def _decode(
        self,
        sc_rgb: torch.Tensor,
        sc_lab: torch.Tensor,
        d1_r: torch.Tensor,
        d1_l: torch.Tensor,
        y_r: torch.Tensor,
        y_l: torch.Tensor,
        timesteps: int,
    ) -> torch.Tensor:
        u1_in = torch.cat((y_r, y_l), 1)
        up2, up3 = Dense(self.up2_Hx.layer_name, 16 * 4), Dense(self.up3_Hx.layer_name, 3 * 4)
        s1, _ = _lif(self.lif_up1_Hx, self.up1_Hx(u1_in), timesteps, up2)
        u2_in = torch.cat((d1_r, d1_l, s1), 1)
        s2, _ = _lif(self.lif_up2_Hx, self.up2_Hx(u2_in), timesteps, up3)
        u3_in = torch.cat((sc_rgb, sc_lab, s2), 1)
        u3 = self.up3_Hx(u3_in)
        cnt = active_counter()
        if cnt is not None:  # the transposed convolutions read concatenations of counted spikes
            cnt.add_macs(float(u1_in.numel()) * 32 * 4, self.up1_Hx.layer_name)  # analog residual stream
            for part, layer in ((d1_r, up2), (d1_l, up2), (sc_rgb, up3), (sc_lab, up3)):
                cnt.fan_out(cnt.measure(part), layer)
            cnt.add_macs(u3.numel(), f"{self.layer_name}.readout")  # one multiply-add per neuron and step
        return _readout(self.cfg, u3.view(timesteps, -1, *u3.shape[1:]), self.readout_steps)


class BackgroundLight(nn.Module):
    """Both spike codes → conv 32→16 → ALIF → conv 16→8 → ALIF → transposed conv → leaky readout."""

    def __init__(self, cfg: DHZConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv1 = nn.Conv2d(32, 16, kernel_size=3, padding=1)
        self.lif1 = ALIF(cfg.tau, cfg.v_threshold, cfg.reset, cfg.surrogate_alpha)
        self.conv2 = nn.Conv2d(16, 8, kernel_size=3, padding=1)
        self.lif2 = ALIF(cfg.tau, cfg.v_threshold, cfg.reset, cfg.surrogate_alpha)
        self.convf = nn.ConvTranspose2d(8, 3, kernel_size=2, stride=2)
        self.readout_steps: tuple[int, ...] | None = None

    def forward(
        self,
        sc: torch.Tensor,
        timesteps: int,
        sc_parts: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        """``sc_parts``: tensors whose channel concatenation is ``sc`` (counted instead of ``sc``)."""
        s1, _ = _lif(self.lif1, self.conv1(sc), timesteps, Conv(self.conv2.layer_name, 8, 3, 1, 1))
        s2, _ = _lif(self.lif2, self.conv2(s1), timesteps, Dense(self.convf.layer_name, 3 * 4))
        f = self.convf(s2)
        cnt = active_counter()
        if cnt is not None:
            for part in sc_parts or (sc,):
                cnt.fan_out(cnt.measure(part), Conv(self.conv1.layer_name, 16, 3, 1, 1))
            cnt.add_macs(f.numel(), f"{self.layer_name}.readout")
        return _readout(self.cfg, f.view(timesteps, -1, *f.shape[1:]), self.readout_steps)


# ----------------------------------------------------------------------------- the network


class SnnTransDHZ(nn.Module):
    """RGB in [0, 1] → restored image ``J = K·I − K·B + I`` (unclamped), any H×W.

    Sizes that are not multiples of 8 are reflect-padded and the output cropped back.
    """

    #: the spike coder's counts go through :mod:`event_kernels` and the neurons, counting or
    #: not, through :mod:`neuron_kernels` (the engine warms both)
    uses_counting_kernels = True
    uses_neuron_kernels = True

    size_multiple = 8

    def __init__(self, cfg: DHZConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or DHZConfig()
        self.spikecode_rgb = SpikeCoder(self.cfg)
        self.spikecode_lab = SpikeCoder(self.cfg)
        self.H_est = KEstimator(self.cfg)
        self.BL_est_conv = BackgroundLight(self.cfg)
        for name, module in self.named_modules():
            module.layer_name = name  # used to label spike rates and operation counts
        self._counting = False
        self._counter: OpCounter | None = None  # of the last counted forward pass, read on demand
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enabled: bool) -> None:
        """Training only: recompute activations in backward instead of storing them.

        The memory live during a training step falls by about 60 % for about 30 % more time
        (``tools/dhz_train_memory.py``); outputs, gradients and BatchNorm statistics are bit-identical.
        """
        self.grad_checkpointing = bool(enabled)
        self.H_est.grad_checkpointing = bool(enabled)

    # -- SpikingModel protocol
    def set_counting(self, enabled: bool) -> None:
        self._counting = bool(enabled)

    def read_counters(self) -> OpCounts:
        """Counts of the last counted forward pass (its one host synchronisation happens here)."""
        return self._counter.result() if self._counter is not None else OpCounts()

    def layer_ops(self) -> dict[str, tuple[float, float]]:
        """(SOPs, MACs) per layer of the last counted forward pass."""
        if self._counter is None:
            return {}
        return {k: (v[0], v[1]) for k, v in self._counter.layers.items()}

    def forward(
        self, x: torch.Tensor, timesteps: int = 4, steps: tuple[int, ...] | None = None
    ) -> torch.Tensor:
        """``steps``: also read out after each of these steps (see :meth:`forward_steps`)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"SnnTransDHZ expects [B, 3, H, W] RGB in [0, 1], got {tuple(x.shape)}")
        if (
            isinstance(timesteps, bool)
            or not isinstance(timesteps, int)
            or not 1 <= timesteps <= MAX_TIMESTEPS
        ):
            raise ValueError(f"timesteps must be an int in 1..{MAX_TIMESTEPS}, got {timesteps!r}")
        if steps is not None:
            if max(steps) != timesteps:
                raise ValueError(f"steps {steps!r} must end at timesteps {timesteps}")
            return self.forward_steps(x, steps)
        h, w = x.shape[-2:]
        cnt = OpCounter() if self._counting else None
        with counting(cnt):  # the layers fill it in (models.counting.active_counter)
            j = self._run(self._pad(x), timesteps)
        if cnt is not None:
            cnt.release()
            self._counter = cnt
        return j[..., :h, :w]

    def forward_steps(self, x: torch.Tensor, steps: tuple[int, ...]) -> torch.Tensor:
        """Outputs after each of ``steps`` (1-based) from one run of ``max(steps)`` timesteps,
        ``[len(steps), B, 3, H, W]``: what anytime training scores. Step ``t`` equals ``forward(x, t)``
        (every layer is causal in time). Not counted."""
        if not steps or any(not 1 <= t <= MAX_TIMESTEPS for t in steps):
            raise ValueError(f"steps must be 1..{MAX_TIMESTEPS}, got {steps!r}")
        owners = (self.H_est, self.BL_est_conv)
        for m in owners:
            m.readout_steps = tuple(steps)
        try:
            with counting(None):
                j = self._run(self._pad(x), max(steps))
        finally:
            for m in owners:
                m.readout_steps = None
        return j[..., : x.shape[-2], : x.shape[-1]]

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Reflect-pad (replicate where too small to reflect) to a multiple of 8."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.size_multiple, (-w) % self.size_multiple
        if not (ph or pw):
            return x
        return F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")

    def prepare_inference(self) -> None:
        """Channels-last weights: oneDNN convolutions and pooling are several times faster."""
        self.to(memory_format=torch.channels_last)

    def _run(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        cnt = active_counter()
        x = x.contiguous(memory_format=torch.channels_last)
        lab = rgb_to_lab_scaled(x).contiguous(memory_format=torch.channels_last)
        on = self.grad_checkpointing and cnt is None
        sc_rgb = stage(self.spikecode_rgb, on, self.spikecode_rgb, x, timesteps)
        sc_lab = stage(self.spikecode_lab, on, self.spikecode_lab, lab, timesteps)
        k = self.H_est(sc_rgb, sc_lab, timesteps)
        sc = torch.cat((sc_rgb, sc_lab), 1)
        parts = (sc_rgb, sc_lab) if cnt is not None else None
        b = stage(self.BL_est_conv, on, self.BL_est_conv, sc, timesteps, parts)
        if cnt is not None:
            cnt.add_macs(2 * x.numel(), "reconstruction")
        return (k * x) - (k * b) + x


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_dhz(metadata: dict[str, Any]) -> SnnTransDHZ:
    """Registry builder: ``variant`` ('official' | 'paper'), ``reset``, ``readout`` and the
    transformer width ``dim`` / ``heads`` (absent: the published 64 / 8) from the metadata."""
    cfg = DHZConfig(
        variant=metadata.get("variant", "official"),
        reset=metadata.get("reset", "none"),
        readout=metadata.get("readout", "leaky"),
        dim=metadata.get("dim", 64),
        heads=metadata.get("heads", 8),
    )
    return SnnTransDHZ(cfg)


registry.register("snntrans_dhz", build_dhz)
