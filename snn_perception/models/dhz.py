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
from snn_perception.models.counting import (
    Conv,
    Dense,
    OpCounter,
    OpCounts,
    Spikes,
    dense_conv_macs,
)
from snn_perception.models.neurons import (
    ALIF,
    Reset,
    _fire_pool,
    _fire_pool_constant,
    _needs_grad,
    constant_spike_totals,
    leaky_readout,
)

Variant = Literal["official", "paper"]
MAX_TIMESTEPS = 64


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

    def __post_init__(self) -> None:
        if self.variant not in ("official", "paper"):
            raise ValueError(f"DHZ variant must be 'official' or 'paper', got {self.variant!r}")
        if self.variant == "official" and self.reset != "none":
            raise ValueError("the 'official' DHZ variant has no neuron reset; use variant='paper'")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be divisible by heads {self.heads}")


# ----------------------------------------------------------------------------- helpers


def _lif(
    lif: ALIF, x: torch.Tensor, timesteps: int, cnt: OpCounter | None, *consumers: Conv | Dense
) -> tuple[torch.Tensor, Spikes | None]:
    """Run a neuron layer over ``[T*B, ...]`` (time-major); counting records its spikes and the
    SOPs of the ``consumers`` they feed (one reduction), and returns the spikes' handle."""
    s = lif(x.view(timesteps, -1, *x.shape[1:])).view(x.shape)
    return s, (cnt.spikes(lif.layer_name, s, *consumers) if cnt is not None else None)


def _lif_pool(
    lif: ALIF, x: torch.Tensor, timesteps: int, cnt: OpCounter | None, constant: bool = False
) -> torch.Tensor:
    """Neuron layer followed by a 2×2 max-pool of its spikes, returning ``[T*B, C, H/2, W/2]``.

    ``constant``: ``x`` is ``[B, C, H, W]`` and the same current is fed at every step.
    Without reset the pool is taken on the membrane: ``maxpool([v ≥ θ]) = [maxpool(v) ≥ θ]``
    exactly, which saves materialising full-resolution spikes. Spike rates are per
    full-resolution neuron.
    """
    if lif.reset != "none" or _needs_grad(x, lif.v_threshold):
        seq = x.expand(timesteps, *x.shape) if constant else x.view(timesteps, -1, *x.shape[1:])
        s = lif(seq).flatten(0, 1)
        if cnt is not None:
            cnt.spikes(lif.layer_name, s)
        return F.max_pool2d(s, 2)
    theta = lif.v_threshold.detach().to(x.dtype)
    tau = float(lif.tau)
    if constant:
        if cnt is not None:  # full-resolution spikes, from the currents (no replay when τ = 2)
            spikes = constant_spike_totals(lif, x, timesteps, tau)
            cnt.add_spikes(lif.layer_name, spikes, timesteps * x.numel())
        return _fire_pool_constant(x, theta, tau, timesteps)
    if cnt is None:
        return _fire_pool(x, theta, tau, timesteps)
    parts: list[torch.Tensor] = []
    out = _fire_pool(x, theta, tau, timesteps, parts)
    cnt.add_spikes(lif.layer_name, parts, x.numel())
    return out


# ----------------------------------------------------------------------------- blocks


class BNAndPad(nn.Module):
    """BatchNorm, then a 1-pixel ring filled with the BN's output for a zero input (its bias).

    That ring makes ``1×1 conv → BN → 3×3 depthwise (no padding)`` equal to a padded 3×3
    convolution after re-parameterisation. The ring value uses the running statistics, as in the
    official code, also in training mode.
    """

    def __init__(self, channels: int, pad: int = 1) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.pad = pad

    def ring_value(self) -> torch.Tensor:
        bn = self.bn
        return bn.bias.detach() - bn.running_mean * bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(x)
        p = self.pad
        if p <= 0:
            return out
        out = F.pad(out, [p] * 4)
        ring = self.ring_value().view(1, -1, 1, 1).to(out.dtype)
        out[:, :, :p, :] = ring
        out[:, :, -p:, :] = ring
        out[:, :, :, :p] = ring
        out[:, :, :, -p:] = ring
        return out


class RepConv(nn.Module):
    """1×1 conv → BN (+ ring) → 3×3 depthwise (valid) → 1×1 conv → BN (official layout)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 1, bias=False),
            BNAndPad(channels, pad=1),
            nn.Sequential(
                nn.Conv2d(channels, channels, 3, groups=channels, bias=False),
                nn.Conv2d(channels, channels, 1, bias=False),
                nn.BatchNorm2d(channels),
            ),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def count(self, x: torch.Tensor | Spikes, cnt: OpCounter, spiking_input: bool) -> None:
        """First 1×1 fed by ``x``; depthwise and second 1×1 fed by analog values; BNs fold away."""
        t = x.tensor if isinstance(x, Spikes) else x
        n, c, h, w = t.shape
        first, dw, second = self.body[0], self.body[2][0], self.body[2][1]
        if spiking_input:
            cnt.fan_out(x, Dense(first.layer_name, c))
        else:
            cnt.add_macs(float(t.numel()) * c, first.layer_name)
        cnt.add_macs(n * c * h * w * 9, dw.layer_name)
        cnt.add_macs(n * h * w * c * c, second.layer_name)


def _rep_branch(channels: int) -> nn.Sequential:
    return nn.Sequential(RepConv(channels), nn.BatchNorm2d(channels))


def _kv_ops(kv: torch.Tensor, kh: torch.Tensor, vh: torch.Tensor) -> torch.Tensor:
    """``Σ_tokens (Σ_d k)(Σ_d v)`` per head, as a float64 tensor: the sum of ``kv = kᵀv``'s entries
    where ``kv`` holds exact integers (float32 sums of 0/1 products below 2^24), else recounted."""
    if kv.dtype in (torch.float32, torch.float64) and kh.shape[-2] <= 1 << 24:
        return kv.sum(dtype=torch.float64)
    return (kh.sum(-1, dtype=torch.float64) * vh.sum(-1, dtype=torch.float64)).sum()


class SpikingAttention(nn.Module):
    """Spike-driven linear attention: per head ``y = q (kᵀ v)``, no softmax and no scale."""

    def __init__(self, dim: int, heads: int, cfg: DHZConfig) -> None:
        super().__init__()
        self.heads = heads

        def lif() -> ALIF:
            return ALIF(cfg.tau, cfg.v_threshold, cfg.reset, cfg.surrogate_alpha)

        self.head_lif = lif()
        self.q_conv = _rep_branch(dim)
        self.k_conv = _rep_branch(dim)
        self.v_conv = _rep_branch(dim)
        self.q_lif = lif()
        self.k_lif = lif()
        self.v_lif = lif()
        self.attn_lif = lif()
        self.proj_conv = _rep_branch(dim)

    def forward(self, x: torch.Tensor, timesteps: int, cnt: OpCounter | None) -> torch.Tensor:
        tb, c, h, w = x.shape
        n, d = h * w, c // self.heads
        s, s_spikes = _lif(self.head_lif, x, timesteps, cnt)
        q, q_spikes = _lif(self.q_lif, self.q_conv(s), timesteps, cnt)
        k, _ = _lif(self.k_lif, self.k_conv(s), timesteps, cnt)
        v, _ = _lif(self.v_lif, self.v_conv(s), timesteps, cnt)
        # tokens × channels per head, [TB, heads, N, d]; free views for channels-last tensors
        qh, kh, vh = (z.permute(0, 2, 3, 1).reshape(tb, n, self.heads, d).transpose(1, 2) for z in (q, k, v))
        kv = kh.transpose(-1, -2) @ vh  # [TB, heads, d, d]; sums of 0/1 products: exact
        y = (qh @ kv).transpose(1, 2).reshape(tb, h, w, c).permute(0, 3, 1, 2)
        a, a_spikes = _lif(self.attn_lif, y, timesteps, cnt)
        if cnt is not None:
            for branch in (self.q_conv, self.k_conv, self.v_conv):
                branch[0].count(s_spikes, cnt, spiking_input=True)
            # kᵀv: an accumulate wherever a key and a value spike at the same token (per head),
            # Σ_tokens (Σ k)(Σ v), which is the sum of kᵀv's entries; q(kᵀv): each query spike
            # adds d entries of kᵀv.
            cnt.add_sops(_kv_ops(kv, kh, vh), f"{self.layer_name}.kv")
            cnt.fan_out(q_spikes, Dense(f"{self.layer_name}.qkv", d))
            self.proj_conv[0].count(a_spikes, cnt, spiking_input=True)
        return self.proj_conv(a)


class SpikingMLP(nn.Module):
    """Conv1d (k = 1) → BN1d → ALIF, on the analog residual stream."""

    def __init__(self, dim: int, cfg: DHZConfig) -> None:
        super().__init__()
        self.fc1_conv = nn.Conv1d(dim, dim, kernel_size=1)
        self.fc1_bn = nn.BatchNorm1d(dim)
        self.fc1_lif = ALIF(cfg.tau, cfg.v_threshold, cfg.reset, cfg.surrogate_alpha)

    def forward(self, x: torch.Tensor, timesteps: int, cnt: OpCounter | None) -> torch.Tensor:
        # the Conv1d over tokens is a 1×1 Conv2d; running it in 2-D keeps channels-last layouts
        c = x.shape[1]
        bn = self.fc1_bn
        y = F.conv2d(x, self.fc1_conv.weight.unsqueeze(-1), self.fc1_conv.bias)
        use_batch_stats = bn.training or bn.running_mean is None
        factor = 0.0 if bn.momentum is None else bn.momentum
        if bn.training and bn.num_batches_tracked is not None:
            bn.num_batches_tracked.add_(1)
            if bn.momentum is None:  # cumulative average, as nn.BatchNorm (used to recalibrate statistics)
                factor = 1.0 / float(bn.num_batches_tracked)
        y = F.batch_norm(
            y, bn.running_mean, bn.running_var, bn.weight, bn.bias, use_batch_stats, factor, bn.eps
        )
        if cnt is not None:
            cnt.add_macs(float(x.numel()) * c, self.fc1_conv.layer_name)
        return _lif(self.fc1_lif, y, timesteps, cnt)[0]


class TransformerBlock(nn.Module):
    """``x + attn(x)``, then ``+ mlp(·)``."""

    def __init__(self, dim: int, heads: int, cfg: DHZConfig) -> None:
        super().__init__()
        self.attn = SpikingAttention(dim, heads, cfg)
        self.mlp = SpikingMLP(dim, cfg)

    def forward(self, x: torch.Tensor, timesteps: int, cnt: OpCounter | None = None) -> torch.Tensor:
        x = x + self.attn(x, timesteps, cnt)
        return x + self.mlp(x, timesteps, cnt)


class SpikeCoder(nn.Module):
    """Conv 3→16 computed once, its current fed for T steps into an ALIF, 2×2 max-pool."""

    def __init__(self, cfg: DHZConfig) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1)
        self.lif1 = ALIF(cfg.tau, cfg.v_threshold, cfg.reset, cfg.surrogate_alpha)

    def forward(self, x: torch.Tensor, timesteps: int, cnt: OpCounter | None = None) -> torch.Tensor:
        if cnt is not None:
            cnt.add_macs(dense_conv_macs(x.shape, 16, 3, 1, 1), self.conv1.layer_name)
        return _lif_pool(self.lif1, self.conv1(x), timesteps, cnt, constant=True)


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
        #: recompute each encoder branch and the decoder in backward (see :mod:`.checkpointing`)
        self.grad_checkpointing = False

    def _encode(
        self, p: str, sc: torch.Tensor, timesteps: int, cnt: OpCounter | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        conv1, conv2 = getattr(self, f"{p}_conv1_Hx"), getattr(self, f"{p}_conv2_Hx")
        d1 = _lif_pool(getattr(self, f"{p}_lif1_Hx"), conv1(sc), timesteps, cnt)
        d2 = _lif_pool(getattr(self, f"{p}_lif2_Hx"), conv2(d1), timesteps, cnt)
        if cnt is not None:
            cnt.fan_out(cnt.measure(sc), Conv(conv1.layer_name, conv1.out_channels, 3, 1, 1))
            cnt.fan_out(cnt.measure(d1), Conv(conv2.layer_name, conv2.out_channels, 3, 1, 1))
        blocks = getattr(self, f"{p}_snn_trans_Lx")
        if self.cfg.variant == "official":  # every block sees d2; only the last one's output is used
            return d1, blocks[-1](d2, timesteps, cnt)
        y = d2
        for blk in blocks:
            y = blk(y, timesteps, cnt)
        return d1, y

    def forward(
        self, sc_rgb: torch.Tensor, sc_lab: torch.Tensor, timesteps: int, cnt: OpCounter | None = None
    ) -> torch.Tensor:
        on = self.grad_checkpointing and cnt is None
        d1_r, y_r = stage(self, on, self._encode, "r", sc_rgb, timesteps, cnt)
        d1_l, y_l = stage(self, on, self._encode, "l", sc_lab, timesteps, cnt)
        return stage(self, on, self._decode, sc_rgb, sc_lab, d1_r, d1_l, y_r, y_l, timesteps, cnt)

    def _decode(
        self,
        sc_rgb: torch.Tensor,
        sc_lab: torch.Tensor,
        d1_r: torch.Tensor,
        d1_l: torch.Tensor,
        y_r: torch.Tensor,
        y_l: torch.Tensor,
        timesteps: int,
        cnt: OpCounter | None,
    ) -> torch.Tensor:
        u1_in = torch.cat((y_r, y_l), 1)
        up2, up3 = Dense(self.up2_Hx.layer_name, 16 * 4), Dense(self.up3_Hx.layer_name, 3 * 4)
        s1, _ = _lif(self.lif_up1_Hx, self.up1_Hx(u1_in), timesteps, cnt, up2)
        u2_in = torch.cat((d1_r, d1_l, s1), 1)
        s2, _ = _lif(self.lif_up2_Hx, self.up2_Hx(u2_in), timesteps, cnt, up3)
        u3_in = torch.cat((sc_rgb, sc_lab, s2), 1)
        u3 = self.up3_Hx(u3_in)
        if cnt is not None:  # the transposed convolutions read concatenations of counted spikes
            cnt.add_macs(float(u1_in.numel()) * 32 * 4, self.up1_Hx.layer_name)  # analog residual stream
            for part, layer in ((d1_r, up2), (d1_l, up2), (sc_rgb, up3), (sc_lab, up3)):
                cnt.fan_out(cnt.measure(part), layer)
            cnt.add_macs(u3.numel(), f"{self.layer_name}.readout")  # one multiply-add per neuron and step
        return leaky_readout(u3.view(timesteps, -1, *u3.shape[1:]), self.cfg.tau)


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

    def forward(
        self,
        sc: torch.Tensor,
        timesteps: int,
        cnt: OpCounter | None = None,
        sc_parts: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        """``sc_parts``: tensors whose channel concatenation is ``sc`` (counted instead of ``sc``)."""
        s1, _ = _lif(self.lif1, self.conv1(sc), timesteps, cnt, Conv(self.conv2.layer_name, 8, 3, 1, 1))
        s2, _ = _lif(self.lif2, self.conv2(s1), timesteps, cnt, Dense(self.convf.layer_name, 3 * 4))
        f = self.convf(s2)
        if cnt is not None:
            for part in sc_parts or (sc,):
                cnt.fan_out(cnt.measure(part), Conv(self.conv1.layer_name, 16, 3, 1, 1))
            cnt.add_macs(f.numel(), f"{self.layer_name}.readout")
        return leaky_readout(f.view(timesteps, -1, *f.shape[1:]), self.cfg.tau)


# ----------------------------------------------------------------------------- the network


class SnnTransDHZ(nn.Module):
    """RGB in [0, 1] → restored image ``J = K·I − K·B + I`` (unclamped), any H×W.

    Sizes that are not multiples of 8 are reflect-padded and the output cropped back.
    """

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

    def forward(self, x: torch.Tensor, timesteps: int = 4) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"SnnTransDHZ expects [B, 3, H, W] RGB in [0, 1], got {tuple(x.shape)}")
        if (
            isinstance(timesteps, bool)
            or not isinstance(timesteps, int)
            or not 1 <= timesteps <= MAX_TIMESTEPS
        ):
            raise ValueError(f"timesteps must be an int in 1..{MAX_TIMESTEPS}, got {timesteps!r}")
        h, w = x.shape[-2:]
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        cnt = OpCounter() if self._counting else None
        j = self._run(x, timesteps, cnt)
        if cnt is not None:
            cnt.release()
            self._counter = cnt
        return j[..., :h, :w] if (ph or pw) else j

    def prepare_inference(self) -> None:
        """Channels-last weights: oneDNN convolutions and pooling are several times faster."""
        self.to(memory_format=torch.channels_last)

    def _run(self, x: torch.Tensor, timesteps: int, cnt: OpCounter | None) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        lab = rgb_to_lab_scaled(x).contiguous(memory_format=torch.channels_last)
        on = self.grad_checkpointing and cnt is None
        sc_rgb = stage(self.spikecode_rgb, on, self.spikecode_rgb, x, timesteps, cnt)
        sc_lab = stage(self.spikecode_lab, on, self.spikecode_lab, lab, timesteps, cnt)
        k = self.H_est(sc_rgb, sc_lab, timesteps, cnt)
        sc = torch.cat((sc_rgb, sc_lab), 1)
        parts = (sc_rgb, sc_lab) if cnt is not None else None
        b = stage(self.BL_est_conv, on, self.BL_est_conv, sc, timesteps, cnt, parts)
        if cnt is not None:
            cnt.add_macs(2 * x.numel(), "reconstruction")
        return (k * x) - (k * b) + x


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_dhz(metadata: dict[str, Any]) -> SnnTransDHZ:
    """Registry builder: ``variant`` ('official' | 'paper') and ``reset`` from the metadata."""
    cfg = DHZConfig(variant=metadata.get("variant", "official"), reset=metadata.get("reset", "none"))
    return SnnTransDHZ(cfg)


registry.register("snntrans_dhz", build_dhz)
