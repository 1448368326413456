"""The operation counters as they were before counting moved onto the device (reference for tests).

``LegacyOpCounter`` and the functions below are the previous ``snn_perception.models.counting``
verbatim: every count is a host float, read with a synchronisation per layer. The reference
forward passes run the models' own modules with the plain neuron loop (``ALIF.forward`` at full
resolution, then ``max_pool2d`` of the spikes; no fast kernels) and count exactly as the previous
``dhz.py`` / ``spiking_unet.py`` did, so tests can compare the new counters with the old ones on
the very same spikes (and check that the reference reproduces the model's output).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from snn_perception.models.colour import rgb_to_lab_scaled
from snn_perception.models.counting import OpCounts
from snn_perception.models.multithreshold import mt_constant, mt_multistep
from snn_perception.models.neurons import leaky_readout

# ----------------------------------------------------------------------------- previous counting.py


def _fan_out_1d(length: int, kernel: int, stride: int, padding: int, device: torch.device) -> torch.Tensor:
    out_len = (length + 2 * padding - kernel) // stride + 1
    idx = torch.arange(length, device=device)
    fan = torch.zeros(length, dtype=torch.float64, device=device)
    for k in range(kernel):
        num = idx + padding - k
        ok = (num >= 0) & (num % stride == 0) & (num // stride < out_len)
        fan += ok.to(torch.float64)
    return fan


def _dense_order(x: torch.Tensor) -> list[int]:
    return sorted(range(x.dim()), key=lambda d: -x.stride(d))


def count_active(x: torch.Tensor) -> float:
    if x.dtype == torch.bool:
        return float(torch.count_nonzero(x))
    flat = x.reshape(-1) if x.is_contiguous() else x.permute(*_dense_order(x)).reshape(-1)
    chunk = 1 << 24
    return float(sum(float(flat[i : i + chunk].sum()) for i in range(0, flat.numel(), chunk)))


def conv_taps(mask: torch.Tensor, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1) -> float:
    _, _, h, w = mask.shape
    active = mask.to(torch.float32) if mask.dtype == torch.bool else mask
    per_pixel = active.sum(dim=(0, 1), dtype=torch.float32).to(torch.float64)
    rows = _fan_out_1d(h, kernel, stride, padding, mask.device)
    cols = _fan_out_1d(w, kernel, stride, padding, mask.device)
    return float((rows @ per_pixel @ cols).item())


def conv_ops(
    inp: torch.Tensor, out_channels: int, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1
) -> float:
    return conv_taps(inp, kernel, stride, padding, groups) * (out_channels // groups)


def transposed_conv_ops(inp: torch.Tensor, out_channels: int, kernel: int, groups: int = 1) -> float:
    return count_active(inp) * (out_channels // groups) * kernel * kernel


class LegacyOpCounter:
    def __init__(self) -> None:
        self.sops = 0.0
        self.macs = 0.0
        self._spikes: dict[str, list[float]] = {}
        self.layers: dict[str, list[float]] = {}

    def add_sops(self, n: float, layer: str = "") -> None:
        self.sops += float(n)
        self.layers.setdefault(layer, [0.0, 0.0])[0] += float(n)

    def add_macs(self, n: float, layer: str = "") -> None:
        self.macs += float(n)
        self.layers.setdefault(layer, [0.0, 0.0])[1] += float(n)

    def spikes(self, name: str, s: torch.Tensor) -> None:
        entry = self._spikes.setdefault(name, [0.0, 0.0])
        entry[0] += count_active(s)
        entry[1] += float(s.numel())

    def result(self) -> OpCounts:
        names = list(self._spikes)
        return OpCounts(
            synaptic_ops=self.sops,
            analog_macs=self.macs,
            layer_names=names,
            layer_spike_rates=[s / n if n else 0.0 for s, n in self._spikes.values()],
            layer_neurons=[n for _, n in self._spikes.values()],
        )

    def layer_ops(self) -> dict[str, tuple[float, float]]:
        return {k: (v[0], v[1]) for k, v in self.layers.items()}


# ----------------------------------------------------------------------------- snnTrans-DHZ


def _lif(lif, x: torch.Tensor, t: int, cnt: LegacyOpCounter) -> torch.Tensor:
    s = lif(x.view(t, -1, *x.shape[1:])).view(x.shape)
    cnt.spikes(lif.layer_name, s)
    return s


def _lif_pool(lif, seq: torch.Tensor, cnt: LegacyOpCounter) -> torch.Tensor:
    """Full-resolution neurons over ``[T, ...]``, all spikes counted, then the 2×2 max-pool."""
    s = lif(seq).flatten(0, 1)
    cnt.spikes(lif.layer_name, s)
    return F.max_pool2d(s, 2)


def _rep_count(rep, x: torch.Tensor, cnt: LegacyOpCounter) -> None:
    n, c, h, w = x.shape
    first, dw, second = rep.body[0], rep.body[2][0], rep.body[2][1]
    cnt.add_sops(count_active(x) * c, first.layer_name)
    cnt.add_macs(n * c * h * w * 9, dw.layer_name)
    cnt.add_macs(n * h * w * c * c, second.layer_name)


def _attention(attn, x: torch.Tensor, t: int, cnt: LegacyOpCounter) -> torch.Tensor:
    tb, c, h, w = x.shape
    n, d = h * w, c // attn.heads
    s = _lif(attn.head_lif, x, t, cnt)
    q = _lif(attn.q_lif, attn.q_conv(s), t, cnt)
    k = _lif(attn.k_lif, attn.k_conv(s), t, cnt)
    v = _lif(attn.v_lif, attn.v_conv(s), t, cnt)
    qh, kh, vh = (z.permute(0, 2, 3, 1).reshape(tb, n, attn.heads, d).transpose(1, 2) for z in (q, k, v))
    kv = kh.transpose(-1, -2) @ vh
    y = (qh @ kv).transpose(1, 2).reshape(tb, h, w, c).permute(0, 3, 1, 2)
    a = _lif(attn.attn_lif, y, t, cnt)
    for branch in (attn.q_conv, attn.k_conv, attn.v_conv):
        _rep_count(branch[0], s, cnt)
    kv_ops = float((kh.sum(-1, dtype=torch.float64) * vh.sum(-1, dtype=torch.float64)).sum())
    cnt.add_sops(kv_ops, f"{attn.layer_name}.kv")
    cnt.add_sops(count_active(q) * d, f"{attn.layer_name}.qkv")
    _rep_count(attn.proj_conv[0], a, cnt)
    return attn.proj_conv(a)


def _mlp(mlp, x: torch.Tensor, t: int, cnt: LegacyOpCounter) -> torch.Tensor:
    c = x.shape[1]
    bn = mlp.fc1_bn
    assert not bn.training, "the reference runs eval-mode models"
    y = F.conv2d(x, mlp.fc1_conv.weight.unsqueeze(-1), mlp.fc1_conv.bias)
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    cnt.add_macs(float(x.numel()) * c, mlp.fc1_conv.layer_name)
    return _lif(mlp.fc1_lif, y, t, cnt)


def _block(blk, x: torch.Tensor, t: int, cnt: LegacyOpCounter) -> torch.Tensor:
    x = x + _attention(blk.attn, x, t, cnt)
    return x + _mlp(blk.mlp, x, t, cnt)


def _coder(coder, x: torch.Tensor, t: int, cnt: LegacyOpCounter) -> torch.Tensor:
    cnt.add_macs(conv_ops(torch.ones_like(x[:1]), 16, 3, 1, 1) * x.shape[0], coder.conv1.layer_name)
    cur = coder.conv1(x)
    return _lif_pool(coder.lif1, cur.expand(t, *cur.shape), cnt)


def _encode(est, p: str, sc: torch.Tensor, t: int, cnt: LegacyOpCounter):
    conv1, conv2 = getattr(est, f"{p}_conv1_Hx"), getattr(est, f"{p}_conv2_Hx")
    c1 = conv1(sc)
    d1 = _lif_pool(getattr(est, f"{p}_lif1_Hx"), c1.view(t, -1, *c1.shape[1:]), cnt)
    c2 = conv2(d1)
    d2 = _lif_pool(getattr(est, f"{p}_lif2_Hx"), c2.view(t, -1, *c2.shape[1:]), cnt)
    cnt.add_sops(conv_ops(sc, conv1.out_channels, 3, 1, 1), conv1.layer_name)
    cnt.add_sops(conv_ops(d1, conv2.out_channels, 3, 1, 1), conv2.layer_name)
    blocks = getattr(est, f"{p}_snn_trans_Lx")
    if est.cfg.variant == "official":
        return d1, _block(blocks[-1], d2, t, cnt)
    y = d2
    for blk in blocks:
        y = _block(blk, y, t, cnt)
    return d1, y


def _k_estimator(est, sc_rgb, sc_lab, t: int, cnt: LegacyOpCounter) -> torch.Tensor:
    d1_r, y_r = _encode(est, "r", sc_rgb, t, cnt)
    d1_l, y_l = _encode(est, "l", sc_lab, t, cnt)
    u1_in = torch.cat((y_r, y_l), 1)
    s1 = _lif(est.lif_up1_Hx, est.up1_Hx(u1_in), t, cnt)
    u2_in = torch.cat((d1_r, d1_l, s1), 1)
    s2 = _lif(est.lif_up2_Hx, est.up2_Hx(u2_in), t, cnt)
    u3_in = torch.cat((sc_rgb, sc_lab, s2), 1)
    u3 = est.up3_Hx(u3_in)
    cnt.add_macs(float(u1_in.numel()) * 32 * 4, est.up1_Hx.layer_name)
    cnt.add_sops(transposed_conv_ops(u2_in, 16, 2), est.up2_Hx.layer_name)
    cnt.add_sops(transposed_conv_ops(u3_in, 3, 2), est.up3_Hx.layer_name)
    cnt.add_macs(u3.numel(), f"{est.layer_name}.readout")
    return leaky_readout(u3.view(t, -1, *u3.shape[1:]), est.cfg.tau)


def _background(bl, sc: torch.Tensor, t: int, cnt: LegacyOpCounter) -> torch.Tensor:
    s1 = _lif(bl.lif1, bl.conv1(sc), t, cnt)
    s2 = _lif(bl.lif2, bl.conv2(s1), t, cnt)
    f = bl.convf(s2)
    cnt.add_sops(conv_ops(sc, 16, 3, 1, 1), bl.conv1.layer_name)
    cnt.add_sops(conv_ops(s1, 8, 3, 1, 1), bl.conv2.layer_name)
    cnt.add_sops(transposed_conv_ops(s2, 3, 2), bl.convf.layer_name)
    cnt.add_macs(f.numel(), f"{bl.layer_name}.readout")
    return leaky_readout(f.view(t, -1, *f.shape[1:]), bl.cfg.tau)


@torch.no_grad()
def dhz_reference(model, x: torch.Tensor, t: int) -> tuple[torch.Tensor, OpCounts, dict]:
    """(output, counts, per-layer ops) of ``model`` (an eval-mode ``SnnTransDHZ``), counted as before."""
    cnt = LegacyOpCounter()
    h, w = x.shape[-2:]
    m = model.size_multiple
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
    x = x.contiguous(memory_format=torch.channels_last)
    lab = rgb_to_lab_scaled(x).contiguous(memory_format=torch.channels_last)
    sc_rgb = _coder(model.spikecode_rgb, x, t, cnt)
    sc_lab = _coder(model.spikecode_lab, lab, t, cnt)
    k = _k_estimator(model.H_est, sc_rgb, sc_lab, t, cnt)
    b = _background(model.BL_est_conv, torch.cat((sc_rgb, sc_lab), 1), t, cnt)
    cnt.add_macs(2 * x.numel(), "reconstruction")
    j = (k * x) - (k * b) + x
    return j[..., :h, :w], cnt.result(), cnt.layer_ops()


# ----------------------------------------------------------------------------- Spiking-UNet


@torch.no_grad()
def spiking_unet_reference(model, x: torch.Tensor, t: int) -> tuple[torch.Tensor, OpCounts, dict]:
    """(output-layer current ``[T, B, ...]``, counts, per-layer ops) of a ``SpikingUNet``, as before."""
    cnt = LegacyOpCounter()
    b = x.shape[0]
    consumers = model._consumers
    cnt.add_macs(
        conv_ops(torch.ones_like(x[:, :1]).expand_as(x), model.config.channels[0], 3, 1, 1), "enc.0.conv1"
    )

    def act(name: str, z: torch.Tensor) -> torch.Tensor:
        v0 = model.membrane_init * model.thresholds[-1] if model.membrane_init else None
        if z.shape[0] == b and name == "enc0.a1":
            s = mt_constant(z, t, model.thresholds, v0)
        else:
            s, _ = mt_multistep(z.reshape(t, b, *z.shape[1:]), model.thresholds, v0, inplace=True)
        s = s.reshape(t * b, *s.shape[2:])
        mask = (s != 0).to(torch.float32)
        cnt.spikes(name, mask)
        for layer, kind, k, pad, c_out in consumers[name]:
            if kind == "conv":
                cnt.add_sops(conv_ops(mask, c_out, k, 1, pad), layer)
            elif kind == "tconv":
                cnt.add_sops(float(mask.sum()) * c_out * k * k, layer)
            else:
                cnt.add_sops(float(mask.sum()), layer)
        return s

    y = model.graph(x, act)
    return y.reshape(t, b, *y.shape[1:]), cnt.result(), cnt.layer_ops()
