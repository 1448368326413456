"""Device-side counting gives today's numbers exactly: old counters vs new, on fixed inputs.

The reference (``counting_reference``) is the previous host-float counter driven by a plain
forward pass (full-resolution neurons, then max-pool); the models count with one reduction per
spike tensor, closed-form border fan-out and a single read per frame. Every field must be equal:
SOPs, MACs, each layer's spike rate and neuron count, and each layer's (SOPs, MACs).
"""

from __future__ import annotations

import pytest
import torch
from counting_reference import LegacyOpCounter, dhz_reference, spiking_unet_reference
from counting_reference import conv_ops as legacy_conv_ops
from counting_reference import count_active as legacy_count

from snn_perception.models.counting import (
    Conv,
    Dense,
    OpCounter,
    Spikes,
    conv_ops,
    count_active,
    exact_total,
)
from snn_perception.models.dhz import DHZConfig, SnnTransDHZ
from snn_perception.models.fan_out import dense_conv_macs
from snn_perception.models.neurons import ALIF, _fire_pool, charge_, constant_current_thresholds, first_charge


def _assert_same(new, new_layers: dict, old, old_layers: dict) -> None:
    assert new.synaptic_ops == old.synaptic_ops
    assert new.analog_macs == old.analog_macs
    assert new.layer_names == old.layer_names
    assert new.layer_spike_rates == old.layer_spike_rates
    assert new.layer_neurons == old.layer_neurons
    assert new_layers == old_layers
    assert new.synaptic_ops > 0 and new.analog_macs > 0


def _image(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _random_dhz(variant: str, reset: str) -> SnnTransDHZ:
    torch.manual_seed(0)
    m = SnnTransDHZ(DHZConfig(variant=variant, reset=reset)).eval()
    with torch.no_grad():  # spread the thresholds so that rates are neither 0 nor 1
        for i, mod in enumerate(m.modules()):
            if hasattr(mod, "v_threshold"):
                mod.v_threshold.fill_(0.05 + 0.1 * (i % 5))
    return m


def _check_dhz(model: SnnTransDHZ, x: torch.Tensor, t: int) -> None:
    ref_out, ref_counts, ref_layers = dhz_reference(model, x, t)
    model.set_counting(True)
    with torch.inference_mode():
        out = model(x, t)
    assert torch.equal(out, ref_out), "the reference forward must follow the model exactly"
    _assert_same(model.read_counters(), model.layer_ops(), ref_counts, ref_layers)


@pytest.mark.parametrize("timesteps", [1, 4])
@pytest.mark.parametrize("hw", [(40, 56), (72, 104), (37, 50)])
@pytest.mark.parametrize(
    ("variant", "reset"), [("official", "none"), ("paper", "none"), ("paper", "subtract")]
)
def test_dhz_random_init_counts_equal_the_previous_counters(variant, reset, hw, timesteps) -> None:
    _check_dhz(_random_dhz(variant, reset), _image(2, *hw), timesteps)


def _shipped(arch: str, task: str, prefer: str):
    """A shipped model of ``arch`` (``prefer`` first), served as the engine serves it; else skip."""
    from snn_perception.runtime.checkpoint import load_checkpoint
    from snn_perception.runtime.engine import Engine, EngineConfig
    from snn_perception.runtime.weights import SHIPPED_DIR, available

    names = sorted(available(), key=lambda n: (n != prefer, n))
    for name in names:
        path = available()[name]
        if path.parent == SHIPPED_DIR and load_checkpoint(path).metadata.get("arch") == arch:
            return Engine.load(name, EngineConfig(), task=task).model
    pytest.skip(f"no shipped {arch} weights")


@pytest.fixture(scope="module")
def shipped_dhz():
    return _shipped("snntrans_dhz", "dehaze", "dhz")  # channels-last, as served


@pytest.mark.parametrize("timesteps", [1, 4])
@pytest.mark.parametrize("hw", [(40, 56), (72, 104)])
def test_dhz_shipped_weights_counts_equal_the_previous_counters(shipped_dhz, hw, timesteps) -> None:
    _check_dhz(shipped_dhz, _image(1, *hw, seed=3), timesteps)


@pytest.fixture(scope="module")
def shipped_unet():
    return _shipped("spiking_unet", "segment", "spiking_unet")


@pytest.mark.parametrize("timesteps", [1, 4])
@pytest.mark.parametrize(("b", "hw"), [(1, (48, 80)), (2, (32, 32)), (1, (112, 64))])
def test_spiking_unet_counts_equal_the_previous_counters(shipped_unet, b, hw, timesteps) -> None:
    x = _image(b, *hw, seed=5)
    ref_y, ref_counts, ref_layers = spiking_unet_reference(shipped_unet, x, timesteps)
    shipped_unet.set_counting(True)
    with torch.inference_mode():
        y = shipped_unet.multistep_output(x, timesteps)
    assert torch.equal(y, ref_y)
    new = shipped_unet.read_counters()
    _assert_same(new, {k: tuple(v) for k, v in shipped_unet._counter.layers.items()}, ref_counts, ref_layers)


# ---------------------------------------------------------------- the counter itself


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [(3, 1, 1), (1, 1, 0), (3, 2, 1), (5, 1, 2), (3, 1, 0), (2, 2, 0)]
)
@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (3, 3), (7, 5), (16, 9), (12, 8), (40, 41), (40, 42)])
def test_closed_form_fan_out_equals_the_convolution_count(kernel, stride, padding, hw) -> None:
    g = torch.Generator().manual_seed(hw[0] * 100 + hw[1])
    mask = (torch.rand(3, 4, *hw, generator=g) > 0.6).float()
    for m in (mask, mask.contiguous(memory_format=torch.channels_last), mask.bool()):
        assert conv_ops(m, 6, kernel, stride, padding) == legacy_conv_ops(mask, 6, kernel, stride, padding)
    counter = OpCounter()
    counter.spikes("s", mask, Conv("c", 6, kernel, stride, padding), Conv("d", 2, kernel, stride, padding, 2))
    assert counter.layers["c"][0] == legacy_conv_ops(mask, 6, kernel, stride, padding)
    assert counter.layers["d"][0] == legacy_conv_ops(mask, 2, kernel, stride, padding, 2)
    assert counter.result().layer_spike_rates == [legacy_count(mask) / mask.numel()]
    # and against brute force: unfold counts every (output, tap) pair reading an active input
    if hw[0] + 2 * padding >= kernel and hw[1] + 2 * padding >= kernel:
        brute = float(torch.nn.functional.unfold(mask, kernel, padding=padding, stride=stride).sum()) * 6
        assert conv_ops(mask, 6, kernel, stride, padding) == brute
    ones = torch.ones(2, 3, *hw)
    macs = legacy_conv_ops(ones, 8, kernel, stride, padding)
    assert dense_conv_macs(ones.shape, 8, kernel, stride, padding) == macs


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(3, 1, 1), (1, 1, 0), (3, 2, 1), (5, 1, 2)])
@pytest.mark.parametrize("hw", [(1, 1), (3, 4), (9, 6), (20, 13)])
def test_fan_out_through_a_nearest_upsampling_is_counted_without_materialising_it(
    kernel, stride, padding, hw
) -> None:
    mask = (torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(7)) > 0.5).float()
    up = torch.nn.functional.interpolate(mask, scale_factor=2.0, mode="nearest")
    counter = OpCounter()
    counter.fan_out(mask, Conv("c", 4, kernel, stride, padding, upsample=2))
    assert counter.layers["c"][0] == legacy_conv_ops(up, 4, kernel, stride, padding)


def test_counter_reads_the_device_once_and_keeps_host_numbers_exact() -> None:
    s = (torch.rand(4, 8, 12, 10, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    new, old = OpCounter(), LegacyOpCounter()
    h = new.spikes("a", s, Conv("c3", 16, 3, 1, 1), Dense("t", 12))
    new.fan_out(h, Conv("c1", 5, 1))
    new.add_sops(torch.tensor(7.0), "x")
    new.add_macs(123, "m")
    old.spikes("a", s)
    old.add_sops(legacy_conv_ops(s, 16, 3, 1, 1), "c3")
    old.add_sops(legacy_count(s) * 12, "t")
    old.add_sops(legacy_conv_ops(s, 5, 1), "c1")
    old.add_sops(7.0, "x")
    old.add_macs(123, "m")
    assert new.result() == old.result()
    assert new.layers == old.layers and new.sops == old.sops and new.macs == old.macs


def test_exact_totals_beyond_float32_integers() -> None:
    """More than 2^24 ones: a float32 sum would round, the chunked partial sums do not."""
    x = torch.ones((1 << 24) + 3, dtype=torch.float32)
    assert float(exact_total(x).double().sum()) == (1 << 24) + 3
    assert count_active(x) == (1 << 24) + 3
    assert count_active(x.bool()) == (1 << 24) + 3
    # a 2-D map as layers have (a 1 × 2^24 one spends 20 s building its per-column fan-out table)
    assert conv_ops(torch.ones(1, 1, 4096, 4097), 1, 1) == 4096 * 4097
    counter = OpCounter()
    counter.spikes("g", Spikes(x))
    assert counter.result().layer_spike_rates == [1.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("theta", [0.25, 0.07, -4.9e-41, 1e-3, 3.0])
def test_constant_current_thresholds_match_the_membrane(dtype, theta) -> None:
    """x ≥ c_t  ⇔  the no-reset neuron fed x fires at step t (on a value grid and around each c_t)."""
    t = 6
    cs = constant_current_thresholds(theta, 2.0, t, dtype)
    th = torch.tensor(theta, dtype=torch.float32).to(dtype)
    finite = torch.tensor([c for c in cs if abs(c) < 1e30], dtype=dtype)
    itype = torch.int32 if dtype == torch.float32 else torch.int64
    bits = finite.view(itype)
    around = torch.cat([(bits + d).view(dtype) for d in (-2, -1, 1, 2)])  # adjacent values
    x = torch.cat([torch.linspace(-4, 8, 20001).to(dtype), finite, around, torch.zeros(1, dtype=dtype)])
    v = first_charge(x, 2.0)
    tmp = torch.empty_like(v)
    for step in range(t):
        if step:
            charge_(v, x, tmp, 2.0)
        assert torch.equal(v >= th, x >= cs[step]), (step, cs[step])


@pytest.mark.parametrize("timesteps", [1, 3])
def test_fire_pool_counts_full_resolution_spikes_and_keeps_its_output(timesteps) -> None:
    g = torch.Generator().manual_seed(timesteps)
    x = (torch.randn(timesteps * 2, 5, 12, 16, generator=g) * 0.3 + 0.2).contiguous(
        memory_format=torch.channels_last
    )
    lif = ALIF(v_threshold=0.25)
    theta = lif.v_threshold.detach()
    counts: list[torch.Tensor] = []
    with torch.no_grad():
        counted = _fire_pool(x, theta, 2.0, timesteps, counts)
        spikes = lif(x.view(timesteps, -1, *x.shape[1:])).flatten(0, 1)
    assert torch.equal(counted, _fire_pool(x, theta, 2.0, timesteps))
    assert torch.equal(counted, torch.nn.functional.max_pool2d(spikes, 2))
    assert float(sum(c.double() for c in counts)) == legacy_count(spikes)
