"""Multi-threshold IF neuron against hand-computed sequences (thresholds are exact in binary)."""

import pytest
import torch

from snn_perception.models.multithreshold import (
    binary_grid,
    mt_constant,
    mt_multistep,
    mt_step,
    output_scale,
    spiking_flow,
    validate_thresholds,
)

MT = (2.0, 1.0, 0.5, 0.25)


def run(currents, thresholds=MT):
    out, v = mt_multistep(torch.tensor(currents, dtype=torch.float32).reshape(-1, 1), thresholds)
    return out.reshape(-1).tolist(), float(v)


def test_constant_input_fires_coarse_to_fine_with_strict_comparison():
    # v: .875 → fires .5+.25 (v .125); 1.0 is not > 1 → .5+.25 (v .25); 1.125 → 1 (v .125); ...
    out, v = run([0.875] * 5)
    assert out == [0.75, 0.75, 1.0, 0.75, 1.0]
    assert v == pytest.approx(0.125)


def test_large_input_fires_every_threshold_once_and_keeps_the_residue():
    out, v = run([5.0, 0.0])
    assert out == [3.75, 1.0]  # 2+1+0.5+0.25, then the residue 1.25 → 1 (v .25, not > .25)
    assert v == pytest.approx(0.25)


def test_negative_current_is_integrated_not_clipped():
    out, v = run([-1.0, 1.5])
    assert out == [0.0, 0.25]
    assert v == pytest.approx(0.25)


def plain_if(currents, theta):
    v, out = 0.0, []
    for c in currents:
        v += c
        s = theta if v > theta else 0.0
        v -= s
        out.append(s)
    return out, v


def test_single_threshold_is_a_plain_if_neuron_with_reset_by_subtraction():
    currents = [0.75, 0.75, 0.5, 0.0, 0.75, 2.5, -0.25, 0.125]
    assert run(currents, (1.0,)) == plain_if(currents, 1.0)
    out, _ = run([0.75, 0.75, 0.75, 0.25, 0.75], (1.0,))
    assert out == [0.0, 1.0, 1.0, 0.0, 1.0]


def test_constant_current_helper_matches_the_multistep_loop():
    current = torch.linspace(-1, 4, 41).reshape(1, 41)
    a = mt_constant(current, 7, MT)
    b, _ = mt_multistep(current.expand(7, 1, 41).clone(), MT)
    assert torch.equal(a, b)


def test_rate_converges_to_the_input_within_range():
    x = torch.rand(1000) * 3.0
    out, _ = mt_multistep(x.expand(64, 1000).clone(), MT)
    assert (out.mean(0) - x).abs().max() < 0.25 / 64 + 1e-5


@pytest.mark.parametrize("bad", [[], [1.0, 2.0], [1.0, 1.0], [1.0, -0.5], ["a"]])
def test_thresholds_must_be_positive_and_strictly_decreasing(bad):
    with pytest.raises(ValueError, match="threshold"):
        validate_thresholds(bad)


def test_spiking_flow_returns_the_flow_and_masks_the_gradient():
    z = torch.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    flow = torch.tensor([0.25, 0.5, 1.75])
    y = spiking_flow(z, flow)
    assert torch.equal(y, flow)
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert z.grad.tolist() == [0.0, 2.0, 3.0]


def reference_loop(currents, thresholds):
    v = torch.zeros_like(currents[0])
    return torch.stack([mt_step(v, c, thresholds) for c in currents]), v


@pytest.mark.parametrize("thresholds", [MT, (1.0,), (0.5, 0.25), (4.0, 2.0, 1.0)])
def test_fast_binary_grid_path_matches_the_threshold_by_threshold_loop(thresholds):
    assert binary_grid(thresholds) is not None
    torch.manual_seed(0)
    dyadic = torch.randint(-16, 64, (12, 500)).float() / 16  # exact in binary: results must be identical
    fast, v_fast = mt_multistep(dyadic, thresholds)
    slow, v_slow = reference_loop(dyadic, thresholds)
    assert torch.equal(fast, slow) and torch.equal(v_fast, v_slow)
    real = torch.randn(12, 500) * 2
    fast, _ = mt_multistep(real, thresholds)
    slow, _ = reference_loop(real, thresholds)
    assert (fast != slow).float().mean() < 1e-3  # only float-rounding ties at a threshold may differ


def test_other_threshold_sets_use_the_general_loop():
    assert binary_grid((1.0, 0.8, 0.6)) is None and binary_grid((0.3,)) is None
    out, _ = mt_multistep(torch.tensor([[1.5], [0.5]]), (1.0, 0.8, 0.6))
    assert out.reshape(-1).tolist() == [1.0, pytest.approx(0.8)]  # v 1.5 → 1 (v .5); then 1.0 → .8


def test_half_threshold_initial_membrane_turns_truncation_into_rounding():
    x = torch.tensor([0.3, 0.45, 0.6, 0.7]).reshape(1, 4)
    trunc, _ = mt_multistep(x, MT)
    rounded, _ = mt_multistep(x, MT, v0=0.125)
    assert trunc.reshape(-1).tolist() == [0.25, 0.25, 0.5, 0.5]  # largest k·0.25 strictly below
    assert rounded.reshape(-1).tolist() == [0.25, 0.5, 0.5, 0.75]  # nearest k·0.25
    slow, _ = mt_multistep(x, (1.0, 0.8), v0=0.125)  # the general loop honours v0 too
    assert slow.reshape(-1).tolist() == [0.0, 0.0, 0.0, pytest.approx(0.8)]


@pytest.mark.parametrize("thresholds", [(2.0, 1.0, 0.5, 0.25), (1.0, 0.8, 0.6)])  # fast and general loops
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided", "bf16"])
def test_graded_spikes_are_counted_as_their_nonzero_entries(thresholds, layout):
    """Counting takes sign() of graded spikes as their 0/1 mask: every multi-threshold output is
    ≥ 0, whatever the currents (negative ones included), in any layout and float type."""
    from snn_perception.models.counting import Conv, OpCounter

    currents = torch.randn(6, 2, 3, 9, 9, generator=torch.Generator().manual_seed(0)) * 3
    s, _ = mt_multistep(currents, thresholds, 0.125)
    s = s.reshape(12, 3, 9, 9)
    assert float(s.min()) >= 0.0 and 0 < int((s != 0).sum()) < s.numel()
    s = {
        "contiguous": s,
        "channels_last": s.contiguous(memory_format=torch.channels_last),
        "strided": s[:, :, :, ::2],  # not dense: a fresh mask, not the scratch buffer
        "bf16": s.bfloat16(),
    }[layout]
    counter = OpCounter()
    for tensor in (s, s[:5, :2].contiguous()):
        mask = (tensor != 0).double()
        counter.reset()
        counter.graded("g", tensor, Conv("c", 4, 3, 1, 1))
        expected = torch.nn.functional.conv2d(mask, torch.ones(4, tensor.shape[1], 3, 3).double(), padding=1)
        counts = counter.result()
        assert counts.layer_spike_rates == [float(mask.sum()) / tensor.numel()]
        assert counts.synaptic_ops == float(expected.sum())


@pytest.mark.parametrize("thresholds", [(2.0, 1.0, 0.5, 0.25), (1.0,), (1.5, 0.7)])
def test_deferred_scale_times_output_scale_is_the_plain_output(thresholds):
    g = torch.Generator().manual_seed(5)
    currents = torch.randn(4, 2, 3, 5, 6, generator=g)
    plain, v = mt_multistep(currents, thresholds, 0.1)
    levels, v_deferred = mt_multistep(currents.clone(), thresholds, 0.1, inplace=True, defer_scale=True)
    assert torch.equal(levels * output_scale(thresholds), plain) and torch.equal(v, v_deferred)
    constant = mt_constant(currents[0], 3, thresholds, defer_scale=True)
    assert torch.equal(constant * output_scale(thresholds), mt_constant(currents[0], 3, thresholds))
    assert output_scale(thresholds) == (1.0 if thresholds == (1.5, 0.7) else thresholds[-1])
