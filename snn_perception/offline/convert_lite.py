"""LiteUNet (ANN) → spiking LiteUNet: fold batch-norm, calibrate site scales, normalise weights.

Every ReLU6 site ``s`` gets a scale λ_s: the 99.9th percentile of its positive activations over a
calibration set from the training split, but at most ``clip / Σθ`` so that the multi-threshold
neuron (which emits at most Σθ per step, in units of λ) saturates exactly where ReLU6 clips.

Normalisation moves λ into the weights around each neuron: the layer that **produces** the
site's current is divided by λ_s (weights and bias), and the layer that **reads** its spikes is
multiplied by λ_s on the input channels those spikes occupy. That is connection-wise
normalisation by construction: a decoder concatenation ``[upsampled spikes, encoder features]``
scales only the spike segment, by its own producer's λ, and leaves the feature segment (a
current, in the ANN's units) alone. Depthwise convolutions (groups = channels) scale per channel
the same way; MBConv projections and the residual stream stay in the ANN's units (no neuron).
``layer`` normalisation, for the ablation, instead gives every decoder concatenation one scale
for all its channels (the larger of the two segments' percentiles), which over- or under-drives
the segment whose true scale differs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from snn_perception.models.folding import fold_conv_bn
from snn_perception.models.lite_unet import LiteUNet, LiteUNetConfig, site_names
from snn_perception.models.spiking_lite_unet import (
    SpikingLiteUNet,
    SpikingLiteUNetConfig,
    site_consumers,
)
from snn_perception.offline.convert import ConvertConfig, conversion_metadata


def LiteConvertConfig(**kw: Any) -> ConvertConfig:
    """The conversion settings of :class:`~snn_perception.offline.convert.ConvertConfig`, with the
    LiteUNet's default initial membrane of half a lowest threshold (rounding, not truncation)."""
    return ConvertConfig(**{"membrane_init": 0.5, **kw})


def fold_batchnorm(ann: LiteUNet) -> LiteUNet:
    """An equivalent LiteUNet without batch-norm (eval-mode statistics folded into the convs)."""
    cfg = LiteUNetConfig.from_dict({**ann.config.to_dict(), "batch_norm": False})
    folded = LiteUNet(cfg)
    sd = {}
    for name, mod in ann.named_modules():
        if isinstance(mod, nn.Sequential) and len(mod) == 2 and isinstance(mod[0], nn.Conv2d):
            sd[f"{name}.0.weight"], sd[f"{name}.0.bias"] = fold_conv_bn(mod[0], mod[1])
    sd["head.weight"], sd["head.bias"] = ann.head.weight.detach().clone(), ann.head.bias.detach().clone()
    folded.load_state_dict(sd, strict=True)
    return folded.to(ann.head.weight.device).eval()


@torch.no_grad()
def calibrate(model: LiteUNet, batches: Iterable[torch.Tensor], cfg: ConvertConfig) -> dict[str, float]:
    """Percentile of positive activations per site."""
    gen = torch.Generator().manual_seed(cfg.seed)
    samples: dict[str, list[torch.Tensor]] = {}
    model.eval()
    n = 0
    for x in batches:
        taps: dict[str, torch.Tensor] = {}
        model(x, taps)
        for name, a in taps.items():
            v = a[a > 0].reshape(-1)
            if v.numel() > cfg.max_samples_per_batch:
                v = v[torch.randint(v.numel(), (cfg.max_samples_per_batch,), generator=gen)]
            samples.setdefault(name, []).append(v.float().cpu())
        n += 1
    if n == 0:
        raise ValueError("calibration set is empty")
    scales = {}
    for name in site_names(model.config):
        v = torch.cat(samples.get(name, [torch.zeros(0)])).numpy()
        p = float(np.percentile(v, cfg.percentile)) if v.size else 1.0
        scales[name] = p if p > 0 else 1.0
    return scales


def site_scales(
    percentiles: dict[str, float], clip: float, thresholds: tuple[float, ...]
) -> dict[str, float]:
    """λ per site: the percentile, capped so that Σθ·λ = clip (the neuron saturates at ReLU6's clip)."""
    cap = clip / sum(thresholds)
    return {k: min(v, cap) for k, v in percentiles.items()}


def _producers(cfg: LiteUNetConfig) -> dict[str, str]:
    """site → the layer whose output current drives it."""
    out = {"stem": "stem.0"}
    for name in site_names(cfg):
        if name.startswith("b"):
            i, kind = name[1:].split(".")
            out[name] = f"blocks.{i}.{kind}.0"
        elif name.startswith("dec"):
            out[name] = f"dec.{name[3:]}.0"
    return out


@torch.no_grad()
def convert(folded: LiteUNet, scales: dict[str, float], cfg: ConvertConfig) -> SpikingLiteUNet:
    """Spiking LiteUNet with normalised copies of ``folded``'s weights (``folded`` is not changed)."""
    if folded.config.batch_norm:
        raise ValueError("convert() needs a batch-norm-free LiteUNet; call fold_batchnorm() first")
    snn = SpikingLiteUNet(
        SpikingLiteUNetConfig(
            net=folded.config,
            thresholds=cfg.thresholds,
            default_timesteps=cfg.default_timesteps,
            membrane_init=cfg.membrane_init,
        )
    )
    snn.load_state_dict(folded.state_dict(), strict=True)
    layers = dict(snn.named_modules())
    for site, layer in _producers(folded.config).items():
        conv = layers[layer]
        conv.weight.div_(scales[site])
        conv.bias.div_(scales[site])
    for site, c in site_consumers(folded.config).items():
        conv = layers[c.layer + ".0"] if c.layer != "head" else layers["head"]
        lo, hi = c.channels or (0, conv.weight.shape[1] * (c.groups if c.groups > 1 else 1))
        if c.groups > 1:  # depthwise: input channel k is output channel k
            conv.weight.mul_(scales[site])
        else:
            conv.weight[:, lo:hi].mul_(scales[site])
    if cfg.norm == "layer":
        _layerwise_decoder(snn, scales)
    return snn.eval()


def _layerwise_decoder(snn: SpikingLiteUNet, scales: dict[str, float]) -> None:
    """Ablation: give each decoder concatenation one input scale (the larger of its segments')
    instead of one per segment, as layer-wise normalisation would."""
    dec = snn.config.decoder
    for j in range(1, len(dec)):
        lam = scales[f"dec{j - 1}"]
        shared = max(lam, 1.0)  # the feature segment's unit is 1 (a current in the ANN's units)
        w = snn.dec[j][0].weight
        w[:, : dec[j - 1]].mul_(shared / lam)
        w[:, dec[j - 1] :].mul_(shared)


def convert_lite(
    ann: LiteUNet, batches: list[torch.Tensor], cfg: ConvertConfig
) -> tuple[SpikingLiteUNet, dict]:
    """Fold, calibrate, convert; returns the spiking network and its ``conversion`` metadata."""
    folded = fold_batchnorm(ann)
    pct = calibrate(folded, batches, cfg)
    scales = site_scales(pct, folded.config.clip, cfg.thresholds)
    snn = convert(folded, scales, cfg)
    return snn, conversion_metadata(cfg, scales, sum(len(b) for b in batches), percentiles=pct)


def lite_snn_metadata(
    ann_meta: dict, conv: dict, cfg: ConvertConfig, ann_sha: str, ann_path: str | Path
) -> dict:
    """Checkpoint metadata of the converted network, carrying the ANN's data and classes."""
    out = {k: v for k, v in ann_meta.items() if k not in ("arch", "command", "metrics")}
    out.update(
        {
            "arch": "spiking_lite_unet",
            "lite_unet": {**ann_meta["lite_unet"], "batch_norm": False},
            "thresholds": list(cfg.thresholds),
            "default_timesteps": cfg.default_timesteps,
            "membrane_init": cfg.membrane_init,
            "conversion": conv,
            "ann": {"sha256": ann_sha, "path": str(ann_path), "metrics": ann_meta.get("metrics", {})},
        }
    )
    return out
