"""ANN → Spiking-UNet conversion: BN folding, normalisation, convergence with T, checkpoints."""

import itertools

import pytest
import torch
from torch import nn

from snn_perception.models import registry
from snn_perception.models.unet import UNet, UNetConfig, site_names
from snn_perception.offline.convert import (
    Calibration,
    ConvertConfig,
    calibrate,
    convert,
    fold_batchnorm,
    scale_input_segments,
)
from snn_perception.runtime.checkpoint import load_checkpoint, load_into, save_checkpoint


def small_ann(seed: int = 0, classes: int = 3) -> UNet:
    torch.manual_seed(seed)
    ann = UNet(UNetConfig(width=4, num_classes=classes)).eval()
    for m in ann.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return ann


@pytest.fixture(scope="module")
def folded():
    return fold_batchnorm(small_ann())


def test_batchnorm_folding_is_exact():
    ann = small_ann()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fold_batchnorm(ann)(x), ann(x), atol=1e-5)


def test_error_against_the_ann_falls_monotonically_with_t(folded):
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32)
    cfg = ConvertConfig(norm="connection")
    snn = convert(folded, calibrate(folded, [torch.rand(2, 3, 32, 32) for _ in range(3)] + [x], cfg), cfg)
    with torch.no_grad():
        ref = folded(x)
        outs = snn.forward_anytime(x, 256, [1, 4, 16, 64, 256])
    errors = [float((outs[t] - ref).abs().mean() / ref.abs().mean()) for t in (1, 4, 16, 64, 256)]
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 0.01


def test_multi_threshold_beats_a_single_threshold_at_short_t(folded):
    x = torch.rand(2, 3, 32, 32)
    errs = {}
    for th in ((2.0, 1.0, 0.5, 0.25), (1.0,)):
        cfg = ConvertConfig(thresholds=th)
        snn = convert(folded, calibrate(folded, [x], cfg), cfg)
        with torch.no_grad():
            errs[th] = float((snn(x, 4) - folded(x)).abs().mean())
    assert errs[(2.0, 1.0, 0.5, 0.25)] < 0.5 * errs[(1.0,)]


def test_anytime_output_is_the_running_mean_of_the_output_current(folded):
    cfg = ConvertConfig()
    x = torch.rand(1, 3, 32, 32)
    snn = convert(folded, calibrate(folded, [x], cfg), cfg)
    with torch.no_grad():
        y = snn.multistep_output(x, 8)
        outs = snn.forward_anytime(x, 8, [3, 8])
        assert torch.allclose(outs[3], y[:3].mean(0), atol=1e-6)
        assert torch.allclose(outs[8], snn(x, 8), atol=1e-6)


def distinct_scales() -> Calibration:
    names = site_names() + [f"cat{i}" for i in range(4)]
    return Calibration({n: 1.0 + 0.37 * k for k, n in enumerate(names)})


def test_connection_wise_scales_every_channel_of_every_concatenated_segment(folded):
    calib = distinct_scales()
    s = calib.scales
    snn = convert(folded, calib, ConvertConfig(norm="connection"))
    ch = folded.config.channels
    for i in range(4):
        c = ch[3 - i]
        ratio = snn.dec[i].conv1.weight / folded.dec[i].conv1.weight  # [out, in, k, k]
        ratio = ratio.permute(1, 0, 2, 3).reshape(2 * c, -1)
        lam_out = s[f"dec{i}.a1"]
        expected = [s[f"enc{3 - i}.a2"] / lam_out] * c + [s[f"up{i}"] / lam_out] * c
        assert torch.allclose(ratio, torch.tensor(expected).unsqueeze(1).expand_as(ratio), rtol=1e-4), i


def test_layer_wise_uses_one_scale_for_the_whole_concatenation(folded):
    calib = distinct_scales()
    s = calib.scales
    snn = convert(folded, calib, ConvertConfig(norm="layer"))
    ratio = snn.dec[0].conv1.weight / folded.dec[0].conv1.weight
    assert torch.allclose(ratio, torch.full_like(ratio, s["cat0"] / s["dec0.a1"]), rtol=1e-4)
    assert torch.allclose(snn.dec[0].conv1.bias, folded.dec[0].conv1.bias / s["dec0.a1"])


def test_segment_scaling_uses_dim_1_of_conv_and_dim_0_of_transposed_conv():
    conv, tconv = nn.Conv2d(5, 2, 3), nn.ConvTranspose2d(5, 2, 2, stride=2)
    for layer, dim in ((conv, 1), (tconv, 0)):
        nn.init.constant_(layer.weight, 1.0)
        scale_input_segments(layer, [(0, 2, 2.0), (2, 5, 3.0)])
        per_in = layer.weight.transpose(0, dim)[:, 0, 0, 0] if dim else layer.weight[:, 0, 0, 0]
        assert per_in.tolist() == [2.0, 2.0, 3.0, 3.0, 3.0], dim
    with pytest.raises(ValueError, match="cover"):
        scale_input_segments(conv, [(0, 4, 1.0)])


def test_first_layer_is_analog_and_counters_follow_the_spikes(folded):
    cfg = ConvertConfig()
    x = torch.rand(1, 3, 32, 32)
    snn = convert(folded, calibrate(folded, [x], cfg), cfg)
    snn.set_counting(True)
    with torch.no_grad():
        snn(x, 4)
    c = snn.read_counters()
    # MACs: one dense pass of the first 3×3 conv (border taps excluded), whatever T
    rows = 3 * 32 - 2  # valid taps along one axis (each border output loses one)
    assert c.analog_macs == pytest.approx(3 * 4 * rows * rows)
    assert c.synaptic_ops > 0 and len(c.layer_names) == 26
    assert all(0.0 <= r <= 1.0 for r in c.layer_spike_rates)


def test_converted_checkpoint_round_trips_through_the_registry(folded, tmp_path):
    cfg = ConvertConfig(thresholds=(1.0, 0.5))
    x = torch.rand(1, 3, 32, 32)
    snn = convert(folded, calibrate(folded, [x], cfg), cfg)
    meta = {
        "arch": "spiking_unet",
        "task": "segment",
        "unet": folded.config.to_dict(),
        "thresholds": [1.0, 0.5],
        "default_timesteps": 3,
    }
    save_checkpoint(tmp_path / "s.safetensors", snn.state_dict(), meta)
    ckpt = load_checkpoint(tmp_path / "s.safetensors")
    model = registry.build(ckpt.metadata["arch"], ckpt.metadata)
    load_into(model, ckpt)
    assert model.thresholds == (1.0, 0.5)
    with torch.no_grad():
        assert torch.equal(model(x, 3), snn(x, 3))
        assert torch.equal(model(x), snn(x, 3))  # default T from metadata


def test_rounding_membrane_init_lowers_the_short_t_error(folded):
    x = torch.rand(2, 3, 32, 32)
    errs = []
    for v in (0.0, 0.5):
        cfg = ConvertConfig(membrane_init=v)
        snn = convert(folded, calibrate(folded, [x], cfg), cfg)
        assert snn.membrane_init == v
        with torch.no_grad():
            errs.append(float((snn(x, 4) - folded(x)).abs().mean()))
    assert errs[1] < errs[0]
    with pytest.raises(ValueError, match="--membrane-init"):
        ConvertConfig(membrane_init=1.5)


@pytest.mark.parametrize(
    "kw, flag",
    [
        (dict(norm="row"), "--norm 'row'"),
        (dict(percentile=150.0), "--percentile 150.0"),
        (dict(thresholds=[1.0, float("inf")]), "--thresholds"),
        (dict(default_timesteps=0), "--timesteps 0"),
        (dict(membrane_init=-0.1), "--membrane-init -0.1"),
    ],
)
def test_bad_settings_name_the_cli_flag(kw: dict, flag: str) -> None:
    """``convert`` prints these messages as they are: they name the flag the user typed."""
    with pytest.raises(ValueError, match="^" + flag.replace("(", r"\(")):
        ConvertConfig(**kw)
