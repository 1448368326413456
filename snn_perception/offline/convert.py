"""ANN U-Net → Spiking-UNet: fold batch-norm, calibrate activation scales, normalise weights.

Scales λ (per activation site) are a high percentile (default 99.9th, Rueckauer et al. 2017) of
the site's positive activations over a calibration set. A layer reading a site with scale λ_in
and feeding a site with scale λ_out gets ``W ← W·λ_in/λ_out`` and ``b ← b/λ_out``, so that every
neuron sees activations in units of its own λ and thresholds are in those units.

The two normalisations differ only at the decoder concatenations ``[skip, up]``:

* **layer-wise**: one λ_in for the whole concatenated input (the percentile over both segments,
  "the maximum activation of the previous layer"): the segment with the smaller scale ends up
  with weights that are too large — the weakness the paper identifies;
* **connection-wise**: each segment's input channels are scaled by its own producer's λ
  (every channel of every segment; ``dim 1`` of a Conv2d weight, ``dim 0`` of a ConvTranspose2d).

Average pooling has no weights: the neuron after it keeps its input's scale (λ_pool = λ_in).
The output layer has no neuron: λ_out = 1, so the accumulated output current / T is in the ANN's
units.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from snn_perception.models.folding import fold_conv_bn
from snn_perception.models.multithreshold import DEFAULT_THRESHOLDS, validate_thresholds
from snn_perception.models.spiking_unet import SpikingUNet, SpikingUNetConfig
from snn_perception.models.timesteps import MAX_TIMESTEPS, MIN_TIMESTEPS
from snn_perception.models.unet import DEPTH, UNet, UNetConfig, concat_inputs, site_names

NORMS = ("layer", "connection")


@dataclass
class ConvertConfig:
    norm: str = "connection"
    percentile: float = 99.9
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    default_timesteps: int = 4
    membrane_init: float = 0.0  # in units of the lowest threshold (see SpikingUNetConfig)
    max_samples_per_batch: int = 200_000  # per site, to bound calibration memory
    seed: int = 0

    def __post_init__(self) -> None:
        """Bad settings fail here, before calibration (messages name the CLI flag)."""
        if self.norm not in NORMS:
            raise ValueError(f"--norm {self.norm!r}: expected one of {NORMS}")
        if not 0.0 < self.percentile <= 100.0:
            raise ValueError(f"--percentile {self.percentile}: must be in (0, 100]")
        self.thresholds = validate_thresholds(self.thresholds, "--thresholds")
        if not all(math.isfinite(t) for t in self.thresholds):
            raise ValueError(f"--thresholds {self.thresholds}: must be finite numbers, e.g. 2,1,0.5,0.25")
        if not MIN_TIMESTEPS <= self.default_timesteps <= MAX_TIMESTEPS:
            raise ValueError(f"--timesteps {self.default_timesteps}: must be between 1 and 64")
        if not 0.0 <= self.membrane_init < 1.0:
            raise ValueError(
                f"--membrane-init {self.membrane_init}: must be in [0, 1) (units of the lowest threshold)"
            )


@dataclass
class Calibration:
    """λ per site, plus λ of each decoder concatenation (``cat{i}``) for layer-wise norm."""

    scales: dict[str, float] = field(default_factory=dict)


# -- batch-norm folding


def fold_batchnorm(ann: UNet) -> UNet:
    """An equivalent U-Net without batch-norm (eval-mode statistics folded into the convs)."""
    cfg = UNetConfig(**{**ann.config.to_dict(), "batch_norm": False})
    folded = UNet(cfg)
    sd = {}
    for prefix, blocks in (("enc", ann.enc), ("dec", ann.dec)):
        for i, block in enumerate(blocks):
            for j in (1, 2):
                w, b = fold_conv_bn(getattr(block, f"conv{j}"), getattr(block, f"bn{j}"))
                sd[f"{prefix}.{i}.conv{j}.weight"], sd[f"{prefix}.{i}.conv{j}.bias"] = w, b
    for i, up in enumerate(ann.up):
        sd[f"up.{i}.weight"], sd[f"up.{i}.bias"] = up.weight.detach().clone(), up.bias.detach().clone()
    sd["head.weight"], sd["head.bias"] = ann.head.weight.detach().clone(), ann.head.bias.detach().clone()
    folded.load_state_dict(sd, strict=True)
    return folded.eval()


# -- calibration


@torch.no_grad()
def calibrate(model: UNet, batches: Iterable[torch.Tensor], cfg: ConvertConfig) -> Calibration:
    """Percentile of positive activations per site (and per decoder concatenation)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    samples: dict[str, list[torch.Tensor]] = {}

    def keep(name: str, a: torch.Tensor) -> None:
        v = a[a > 0].reshape(-1)
        if v.numel() > cfg.max_samples_per_batch:
            v = v[torch.randint(v.numel(), (cfg.max_samples_per_batch,), generator=gen)]
        samples.setdefault(name, []).append(v.float())

    model.eval()
    n = 0
    for x in batches:
        taps: dict[str, torch.Tensor] = {}
        model(x, taps)
        for name, a in taps.items():
            keep(name, a)
        for i in range(DEPTH):
            skip, up = concat_inputs(i)
            keep(f"cat{i}", torch.cat([taps[skip], taps[up]], dim=1))
        n += 1
    if n == 0:
        raise ValueError("calibration set is empty")
    scales = {}
    for name, parts in samples.items():
        v = torch.cat(parts).numpy()
        scales[name] = float(np.percentile(v, cfg.percentile)) if v.size else 1.0
        if not scales[name] > 0:
            scales[name] = 1.0
    for name in site_names():  # a site that never fired still needs a scale
        scales.setdefault(name, 1.0)
    return Calibration(scales)


# -- normalisation


def scale_input_segments(layer: nn.Module, segments: Sequence[tuple[int, int, float]]) -> None:
    """Multiply the weights reading input channels ``[start, stop)`` by ``scale``, in place.

    Input channels are ``dim 1`` of a Conv2d weight ``[out, in, k, k]`` and ``dim 0`` of a
    ConvTranspose2d weight ``[in, out, k, k]``. The slices must tile every input channel.
    """
    dim = 0 if isinstance(layer, nn.ConvTranspose2d) else 1
    w = layer.weight.data
    covered = 0
    for start, stop, scale in sorted(segments):
        if start != covered:
            raise ValueError(
                f"input segments must tile channels 0..{w.shape[dim]}; gap or overlap at {start}"
            )
        w.narrow(dim, start, stop - start).mul_(scale)
        covered = stop
    if covered != w.shape[dim]:
        raise ValueError(f"input segments cover {covered} of {w.shape[dim]} input channels")


Plan = list[tuple[str, list[tuple[int, int, float]], float]]


def _layer_io(cfg: UNetConfig, calib: Calibration, norm: str) -> Plan:
    """(layer name, input segments with their λ_in, λ_out) for every weighted layer."""
    s = calib.scales
    ch = cfg.channels
    plan: Plan = []
    for i in range(DEPTH + 1):
        c_in = cfg.in_channels if i == 0 else ch[i - 1]
        lam_in = 1.0 if i == 0 else s[f"pool{i - 1}"]
        plan.append((f"enc.{i}.conv1", [(0, c_in, lam_in)], s[f"enc{i}.a1"]))
        plan.append((f"enc.{i}.conv2", [(0, ch[i], s[f"enc{i}.a1"])], s[f"enc{i}.a2"]))
    for i in range(DEPTH):
        src = f"enc{DEPTH}.a2" if i == 0 else f"dec{i - 1}.a2"
        c_up_in, c = ch[DEPTH - i], ch[DEPTH - 1 - i]
        plan.append((f"up.{i}", [(0, c_up_in, s[src])], s[f"up{i}"]))
        skip, up = concat_inputs(i)
        if norm == "connection":
            segs = [(0, c, s[skip]), (c, 2 * c, s[up])]
        else:
            segs = [(0, 2 * c, s[f"cat{i}"])]
        plan.append((f"dec.{i}.conv1", segs, s[f"dec{i}.a1"]))
        plan.append((f"dec.{i}.conv2", [(0, c, s[f"dec{i}.a1"])], s[f"dec{i}.a2"]))
    plan.append(("head", [(0, ch[0], s[f"dec{DEPTH - 1}.a2"])], 1.0))
    return plan


def pooled_scales(calib: Calibration) -> Calibration:
    """λ_pool = λ of the pooled site (average pooling does not change the unit)."""
    scales = dict(calib.scales)
    for i in range(DEPTH):
        scales[f"pool{i}"] = scales[f"enc{i}.a2"]
    return Calibration(scales)


def convert(folded: UNet, calib: Calibration, cfg: ConvertConfig) -> SpikingUNet:
    """Spiking-UNet with normalised copies of ``folded``'s weights (``folded`` is not changed)."""
    if folded.config.batch_norm:
        raise ValueError("convert() needs a batch-norm-free U-Net; call fold_batchnorm() first")
    calib = pooled_scales(calib)
    snn = SpikingUNet(
        SpikingUNetConfig(
            unet=folded.config,
            thresholds=cfg.thresholds,
            default_timesteps=cfg.default_timesteps,
            membrane_init=cfg.membrane_init,
        )
    )
    snn.load_state_dict(folded.state_dict(), strict=True)
    layers = dict(snn.named_modules())
    with torch.no_grad():
        for name, segments, lam_out in _layer_io(folded.config, calib, cfg.norm):
            layer = layers[name]
            scale_input_segments(layer, [(a, b, lam / lam_out) for a, b, lam in segments])
            layer.bias.data.div_(lam_out)
    return snn.eval()


def conversion_metadata(
    cfg: ConvertConfig, scales: dict[str, float], n_calib: int, **per_site: dict[str, float]
) -> dict:
    """The ``conversion`` metadata of a converted checkpoint: its settings, the scale λ of every
    site, and any other per-site numbers given (e.g. ``percentiles``), rounded alike."""
    return {
        "norm": cfg.norm,
        "percentile": cfg.percentile,
        "thresholds": list(cfg.thresholds),
        "default_timesteps": cfg.default_timesteps,
        "membrane_init": cfg.membrane_init,
        "calibration_images": n_calib,
        "scales": {k: round(v, 6) for k, v in scales.items()},
        **{name: {k: round(v, 6) for k, v in values.items()} for name, values in per_site.items()},
    }


# -- checkpoints and calibration data


def load_unet(weights: str | Path, expect: tuple[str, ...] = ("unet", "spiking_unet")):
    """(model, checkpoint) for an ANN (``unet``) or converted (``spiking_unet``) checkpoint."""
    from snn_perception.models import registry
    from snn_perception.runtime.checkpoint import WeightsError, load_checkpoint, load_into
    from snn_perception.runtime.weights import resolve

    ckpt = load_checkpoint(resolve(str(weights)))
    arch = ckpt.metadata.get("arch")
    if arch not in expect:
        raise WeightsError(f"{ckpt.path}: holds architecture {arch!r}; expected {' or '.join(expect)}")
    try:
        model = registry.build(arch, ckpt.metadata)
    except ValueError as exc:
        raise WeightsError(f"{ckpt.path}: metadata does not describe a valid {arch!r}: {exc}") from exc
    load_into(model, ckpt)
    return model.eval(), ckpt


def calibration_batches(
    data: list[str],
    n: int,
    size: tuple[int, int],
    head: str,
    batch: int = 8,
    val_fraction: float = 0.2,
    seed: int = 0,
    sigma_max: float = 50.0,
):
    """The first ``n`` images of a seeded shuffle of the training split (never validation)."""
    import random

    from snn_perception.offline.seg_data import (
        ImageFolder,
        SegDataset,
        image_only_pairs,
        list_pairs,
        split_pairs,
    )

    pairs = []
    for root in data:
        root_pairs = list_pairs(root) if head == "segment" else image_only_pairs(root)
        pairs += split_pairs(root_pairs, val_fraction, seed)[0]
    random.Random(seed + 1).shuffle(pairs)
    pairs = pairs[:n]
    ds = SegDataset(pairs, size, None) if head == "segment" else ImageFolder(pairs, size)
    gen = torch.Generator().manual_seed(seed)
    for i in range(0, len(ds), batch):
        x = torch.stack([ds[j][0] for j in range(i, min(i + batch, len(ds)))])
        if head == "denoise":
            sigma = torch.rand(x.shape[0], 1, 1, 1, generator=gen) * (sigma_max / 255.0)
            x = x + sigma * torch.randn(x.shape, generator=gen)
        yield x


def convert_checkpoint(
    ann_path: str | Path,
    data: list[str],
    cfg: ConvertConfig,
    n_calib: int = 64,
    size: tuple[int, int] | None = None,
    device: torch.device | None = None,
) -> tuple[nn.Module, dict]:
    """Load an ANN checkpoint, fold, calibrate on its training split, convert; returns (snn, metadata).

    A ``lite_unet`` ANN goes through :mod:`.convert_lite` (same settings; its scales are capped at
    the ReLU6 clip). ``device``: where calibration runs (the result is on the CPU).
    """
    ann, ckpt = load_unet(ann_path, expect=("unet", "lite_unet"))
    meta = ckpt.metadata
    size = size or tuple(meta.get("input_hw") or (256, 256))
    if meta.get("arch") == "lite_unet":
        from snn_perception.offline.convert_lite import LiteConvertConfig, convert_lite, lite_snn_metadata

        training = meta.get("training", {})
        lcfg = LiteConvertConfig(
            norm=cfg.norm,
            percentile=cfg.percentile,
            thresholds=cfg.thresholds,
            default_timesteps=cfg.default_timesteps,
            membrane_init=cfg.membrane_init,
            seed=cfg.seed,
        )
        batches = list(
            calibration_batches(
                data,
                n_calib,
                size,
                "segment",
                val_fraction=float(training.get("val_fraction", 0.2)),
                seed=int(training.get("seed", 0)),
            )
        )
        dev = device or torch.device("cpu")
        snn, conv = convert_lite(ann.to(dev), [b.to(dev) for b in batches], lcfg)
        return snn.cpu(), lite_snn_metadata(meta, conv, lcfg, ckpt.sha256, ckpt.path)
    folded = fold_batchnorm(ann)
    training = meta.get("training", {})
    batches = list(
        calibration_batches(
            data,
            n_calib,
            size,
            folded.config.head,
            val_fraction=float(training.get("val_fraction", 0.2)),
            seed=int(training.get("seed", 0)),
        )
    )
    calib = calibrate(folded, batches, cfg)
    snn = convert(folded, calib, cfg)
    out_meta = {k: v for k, v in meta.items() if k not in ("arch", "command", "metrics")}
    out_meta.update(
        {
            "arch": "spiking_unet",
            "unet": folded.config.to_dict(),
            "thresholds": list(cfg.thresholds),
            "default_timesteps": cfg.default_timesteps,
            "membrane_init": cfg.membrane_init,
            "conversion": conversion_metadata(cfg, pooled_scales(calib).scales, sum(len(b) for b in batches)),
            "ann": {"sha256": ckpt.sha256, "path": str(ckpt.path), "metrics": meta.get("metrics", {})},
        }
    )
    return snn, out_meta
