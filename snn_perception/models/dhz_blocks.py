"""The snnTrans-DHZ transformer blocks and the neuron-layer helpers the network shares.

Split from :mod:`.dhz` so each file holds one idea: here the repeated parts (re-parameterised
convolutions, spiking self-attention, the MLP), there the network that wires them together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from snn_perception.models.counting import (
    Conv,
    Dense,
    OpCounter,
    Spikes,
    active_counter,
)
from snn_perception.models.neurons import (
    ALIF,
    _fire_pool,
    _fire_pool_constant,  # noqa: F401  (re-exported through .dhz for tests)
    _needs_grad,
    fire_pool_constant_counted,
)

if TYPE_CHECKING:
    from snn_perception.models.dhz import DHZConfig


def _lif(
    lif: ALIF, x: torch.Tensor, timesteps: int, *consumers: Conv | Dense
) -> tuple[torch.Tensor, Spikes | None]:
    """Run a neuron layer over ``[T*B, ...]`` (time-major); counting (:func:`active_counter`)
    records its spikes and the SOPs of the ``consumers`` they feed (one reduction), and returns
    the spikes' handle."""
    seq = x.view(timesteps, -1, *x.shape[1:])
    cnt = active_counter()
    if cnt is None:
        return lif(seq).view(x.shape), None
    s, total = lif.forward_counted(seq)  # counted as it fired, where the fused kernel ran
    s = s.view(x.shape)
    return s, cnt.spikes(lif.layer_name, Spikes(s, total=total), *consumers)


def _lif_pool(lif: ALIF, x: torch.Tensor, timesteps: int, constant: bool = False) -> torch.Tensor:
    """Neuron layer followed by a 2×2 max-pool of its spikes, returning ``[T*B, C, H/2, W/2]``.

    ``constant``: ``x`` is ``[B, C, H, W]`` and the same current is fed at every step.
    Without reset the pool is taken on the membrane: ``maxpool([v ≥ θ]) = [maxpool(v) ≥ θ]``
    exactly, which saves materialising full-resolution spikes. Spike rates are per
    full-resolution neuron.
    """
    cnt = active_counter()
    if lif.reset != "none" or _needs_grad(x, lif.v_threshold):
        seq = x.expand(timesteps, *x.shape) if constant else x.view(timesteps, -1, *x.shape[1:])
        s = lif(seq).flatten(0, 1)
        if cnt is not None:
            cnt.spikes(lif.layer_name, s)
        return F.max_pool2d(s, 2)
    theta = lif.v_threshold.detach().to(x.dtype)
    tau = float(lif.tau)
    if constant:  # full-resolution spikes counted from the currents (no replay when τ = 2)
        out, spikes = fire_pool_constant_counted(lif, x, timesteps, cnt is not None, tau)
        if cnt is not None:
            cnt.add_spikes(lif.layer_name, spikes, timesteps * x.numel())
        return out
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

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        tb, c, h, w = x.shape
        n, d = h * w, c // self.heads
        s, s_spikes = _lif(self.head_lif, x, timesteps)
        q, q_spikes = _lif(self.q_lif, self.q_conv(s), timesteps)
        k, _ = _lif(self.k_lif, self.k_conv(s), timesteps)
        v, _ = _lif(self.v_lif, self.v_conv(s), timesteps)
        # tokens × channels per head, [TB, heads, N, d]; free views for channels-last tensors
        qh, kh, vh = (z.permute(0, 2, 3, 1).reshape(tb, n, self.heads, d).transpose(1, 2) for z in (q, k, v))
        kv = kh.transpose(-1, -2) @ vh  # [TB, heads, d, d]; sums of 0/1 products: exact
        y = (qh @ kv).transpose(1, 2).reshape(tb, h, w, c).permute(0, 3, 1, 2)
        a, a_spikes = _lif(self.attn_lif, y, timesteps)
        cnt = active_counter()
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

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
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
        cnt = active_counter()
        if cnt is not None:
            cnt.add_macs(float(x.numel()) * c, self.fc1_conv.layer_name)
        return _lif(self.fc1_lif, y, timesteps)[0]


class TransformerBlock(nn.Module):
    """``x + attn(x)``, then ``+ mlp(·)``."""

    def __init__(self, dim: int, heads: int, cfg: DHZConfig) -> None:
        super().__init__()
        self.attn = SpikingAttention(dim, heads, cfg)
        self.mlp = SpikingMLP(dim, cfg)

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        x = x + self.attn(x, timesteps)
        return x + self.mlp(x, timesteps)
