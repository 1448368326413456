"""snnTrans-DHZ structure: variants, sizes, batches, gradients and operation counting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snn_perception.models import registry
from snn_perception.models.counting import conv_ops, transposed_conv_ops
from snn_perception.models.dhz import DHZConfig, SnnTransDHZ, num_parameters


def _model(variant: str = "official", reset: str = "none", seed: int = 0) -> SnnTransDHZ:
    torch.manual_seed(seed)
    m = SnnTransDHZ(DHZConfig(variant=variant, reset=reset)).eval()
    with torch.no_grad():  # lower thresholds so that every layer spikes on a random image
        for name, p in m.named_parameters():
            if name.endswith("v_threshold"):
                p.fill_(0.05)
    return m


@pytest.mark.parametrize("variant", ["official", "paper"])
def test_both_variants_have_the_published_parameter_count(variant: str) -> None:
    assert num_parameters(SnnTransDHZ(DHZConfig(variant=variant))) == 567_040


def test_registry_builds_from_metadata() -> None:
    m = registry.build("snntrans_dhz", {"variant": "paper", "reset": "subtract"})
    assert isinstance(m, SnnTransDHZ) and m.cfg.variant == "paper" and m.cfg.reset == "subtract"


def test_official_variant_refuses_a_reset() -> None:
    with pytest.raises(ValueError, match="official"):
        DHZConfig(variant="official", reset="subtract")


def test_paper_variant_chains_the_blocks_and_differs_from_official() -> None:
    official, paper = _model("official"), _model("paper")
    paper.load_state_dict(official.state_dict())
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(official(x, 2), paper(x, 2))


def test_official_variant_ignores_the_first_five_blocks() -> None:
    m = _model("official")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = m(x, 2)
        for blk in list(m.H_est.r_snn_trans_Lx)[:5]:
            for p in blk.parameters():
                p.add_(1.0)
        assert torch.equal(before, m(x, 2))


@pytest.mark.parametrize("hw", [(30, 45), (17, 9), (7, 5)])
def test_odd_sizes_are_padded_and_cropped_back(hw: tuple[int, int]) -> None:
    m = _model()
    x = torch.rand(1, 3, *hw)
    with torch.no_grad():
        y = m(x, 2)
        assert y.shape == x.shape
        ph, pw = (-hw[0]) % 8, (-hw[1]) % 8
        mode = "reflect" if ph < hw[0] and pw < hw[1] else "replicate"
        manual = m(F.pad(x, (0, pw, 0, ph), mode=mode), 2)[..., : hw[0], : hw[1]]
    torch.testing.assert_close(y, manual, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("variant", "reset"), [("official", "none"), ("paper", "none"), ("paper", "subtract")]
)
def test_batch_gives_per_sample_what_batch_of_one_gives(variant: str, reset: str) -> None:
    m = _model(variant, reset)
    x = torch.rand(3, 3, 24, 40)
    with torch.no_grad():
        batch = m(x, 3)
        for i in range(3):
            torch.testing.assert_close(batch[i : i + 1], m(x[i : i + 1], 3), rtol=0, atol=1e-6)


def test_rejects_bad_timesteps_and_shapes() -> None:
    m = _model()
    x = torch.rand(1, 3, 8, 8)
    for t in (0, 65, 2.0, True):
        with pytest.raises(ValueError, match="timesteps"):
            m(x, t)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        m(torch.rand(3, 8, 8), 2)


def test_training_mode_backpropagates_into_weights_and_thresholds() -> None:
    m = SnnTransDHZ(DHZConfig(variant="paper", reset="subtract")).train()
    x = torch.rand(2, 3, 16, 16)
    y = m(x, 2)
    F.mse_loss(y, torch.rand_like(y)).backward()
    grads = {n: p.grad for n, p in m.named_parameters()}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    assert grads["spikecode_rgb.conv1.weight"].abs().sum() > 0
    assert grads["spikecode_rgb.lif1.v_threshold"].abs() > 0
    assert grads["H_est.r_snn_trans_Lx.0.attn.q_conv.0.body.0.weight"].abs().sum() > 0


# ---------------------------------------------------------------- operation counting


def _brute_force_conv(module: nn.Module, inp: torch.Tensor) -> tuple[float, float]:
    """(SOPs, MACs) of one conv call by enumerating every (output, weight tap) pair."""
    binary = bool(((inp == 0) | (inp == 1)).all())
    active = (inp != 0).double() if binary else torch.ones_like(inp, dtype=torch.float64)
    if isinstance(module, nn.ConvTranspose2d):
        # scatter every input to its k×k×C_out outputs
        k = module.kernel_size[0]
        ops = float(active.sum()) * module.out_channels * k * k
    else:
        if isinstance(module, nn.Conv1d):
            active = active.unsqueeze(-1)
        k = module.kernel_size[0]
        pad = module.padding[0]
        groups = module.groups
        cols = F.unfold(active, k, padding=pad)  # [N, C·k·k, L]: one column per output position
        n, _, length = cols.shape
        cols = cols.view(n, groups, -1, length)
        ops = float(cols.sum()) * (module.out_channels // groups)
    return (ops, 0.0) if binary else (0.0, ops)


def test_counters_match_a_brute_force_count_per_layer() -> None:
    m = _model("paper")  # every block runs, so every layer type is exercised
    x = torch.rand(1, 3, 24, 16)
    seen: dict[str, list[float]] = {}

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        s, mac = _brute_force_conv(module, args[0])
        entry = seen.setdefault(module.layer_name, [0.0, 0.0])
        entry[0] += s
        entry[1] += mac

    for mod in m.modules():
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
            mod.register_forward_hook(hook)
    m.set_counting(True)
    with torch.no_grad():
        m(x, 3)
    counted = m.layer_ops()
    assert set(seen) <= set(counted), f"layers never counted: {set(seen) - set(counted)}"
    for name, (sops, macs) in seen.items():
        assert counted[name] == pytest.approx((sops, macs)), name
    total = m.read_counters()
    assert total.synaptic_ops == pytest.approx(sum(v[0] for v in counted.values()))
    assert total.synaptic_ops > 0 and total.analog_macs > 0
    assert all(0.0 <= r <= 1.0 for r in total.layer_spike_rates)


def test_attention_accumulates_are_counted_from_coincident_spikes() -> None:
    m = _model("paper")
    m.set_counting(True)
    with torch.no_grad():
        m(torch.rand(1, 3, 16, 16), 2)
    ops = m.layer_ops()
    kv = [v[0] for k, v in ops.items() if k.endswith(".kv")]
    assert len(kv) == 12 and sum(kv) > 0


def test_conv_ops_border_fan_out_is_exact() -> None:
    mask = torch.zeros(1, 1, 3, 3)
    mask[0, 0, 0, 0] = 1  # a corner input reaches 4 of the 9 positions of a padded 3×3 conv
    assert conv_ops(mask, out_channels=2, kernel=3, padding=1) == 8
    mask[0, 0, 1, 1] = 1  # the centre reaches all 9
    assert conv_ops(mask, out_channels=2, kernel=3, padding=1) == 8 + 18
    assert transposed_conv_ops(mask, out_channels=3, kernel=2) == 2 * 3 * 4


def test_counting_does_not_change_the_output() -> None:
    m = _model()
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        off = m(x, 2)
        m.set_counting(True)
        on = m(x, 2)
    assert torch.equal(off, on)


@pytest.mark.parametrize("timesteps", [1, 2, 4, 8])
def test_constant_input_pooling_before_the_neuron_is_exact(timesteps: int) -> None:
    """The spike coder pools its input current first (exact because v_t is monotone in x)."""
    from snn_perception.models.dhz import _fire_pool_constant
    from snn_perception.models.neurons import ALIF

    lif = ALIF(v_threshold=0.3)
    torch.manual_seed(timesteps)
    # currents packed around every per-step firing boundary θ / (1 − 2^−t), ulp-close included
    bounds = torch.tensor([0.3 / (1 - 2.0**-t) for t in range(1, timesteps + 1)])
    x = bounds[torch.randint(len(bounds), (2, 8, 32, 32))]
    x = x + torch.randint(-3, 4, x.shape) * 3e-8 + torch.randn(x.shape) * 1e-3 * (torch.rand(x.shape) < 0.3)
    with torch.no_grad():
        fast = _fire_pool_constant(x, lif.v_threshold.detach(), 2.0, timesteps)
        direct = F.max_pool2d(lif(x.expand(timesteps, *x.shape)).flatten(0, 1), 2)
    assert torch.equal(fast, direct)


def test_constant_input_pooling_with_another_tau_is_exact() -> None:
    from snn_perception.models.dhz import _fire_pool_constant
    from snn_perception.models.neurons import ALIF

    lif = ALIF(tau=3.0, v_threshold=0.2)
    x = torch.rand(1, 4, 8, 8) * 0.6
    with torch.no_grad():
        fast = _fire_pool_constant(x, lif.v_threshold.detach(), 3.0, 5)
        direct = F.max_pool2d(lif(x.expand(5, *x.shape)).flatten(0, 1), 2)
    assert torch.equal(fast, direct)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_mlp_batchnorm_updates_running_stats_as_nn_batchnorm(momentum: float | None) -> None:
    # SpikingMLP calls F.batch_norm itself; momentum=None (cumulative average, what BN
    # recalibration uses) was once treated as 0, silently freezing its statistics
    from snn_perception.models.dhz import SpikingMLP

    torch.manual_seed(0)
    mlp = SpikingMLP(8, DHZConfig()).train()
    ref = nn.BatchNorm1d(8, momentum=momentum).train()
    mlp.fc1_bn.momentum = momentum
    for _ in range(3):
        x = torch.rand(2, 8, 4, 4) * 3 + 1
        mlp(x, 1)
        y = F.conv2d(x, mlp.fc1_conv.weight.unsqueeze(-1), mlp.fc1_conv.bias)
        ref(y.flatten(2))  # the same pre-activation, as nn.BatchNorm1d sees [N, C, L]
    torch.testing.assert_close(mlp.fc1_bn.running_mean, ref.running_mean)
    torch.testing.assert_close(mlp.fc1_bn.running_var, ref.running_var)
    assert int(mlp.fc1_bn.num_batches_tracked) == 3
