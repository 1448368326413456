"""ALIF dynamics, the surrogate gradient and the leaky readout."""

from __future__ import annotations

import pytest
import torch

from snn_perception.models.neurons import ALIF, leaky_readout, spike_fn


def test_membrane_charges_halfway_towards_the_input_each_step() -> None:
    lif = ALIF(tau=2.0, v_threshold=10.0)  # never fires: look at the membrane only
    v = lif.membranes(torch.full((4, 1), 1.0))[:, 0]
    torch.testing.assert_close(v, torch.tensor([0.5, 0.75, 0.875, 0.9375]))


def test_fires_when_membrane_reaches_threshold_and_never_resets() -> None:
    lif = ALIF(tau=2.0, v_threshold=0.75)
    s = lif(torch.full((5, 1), 1.0))[:, 0]
    # v = 0.5, 0.75, 0.875, …: v ≥ θ from step 2 on, and keeps firing (no reset)
    assert s.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]


def test_subtractive_reset_lowers_the_membrane_by_threshold() -> None:
    lif = ALIF(tau=2.0, v_threshold=0.75, reset="subtract")
    s = lif(torch.full((4, 1), 1.0))[:, 0]
    # v: 0.5 → 0.75 (spike, → 0) → 0.5 → 0.75 (spike)
    assert s.tolist() == [0.0, 1.0, 0.0, 1.0]


def test_state_starts_at_zero_on_every_call() -> None:
    lif = ALIF(v_threshold=0.3)
    x = torch.rand(3, 2, 5)
    torch.testing.assert_close(lif(x), lif(x))


def test_negative_threshold_fires_on_zero_input() -> None:
    lif = ALIF(v_threshold=-1e-40)
    assert lif(torch.zeros(2, 3)).eq(1).all()


@pytest.mark.parametrize("reset", ["none", "subtract"])
def test_inference_and_autograd_paths_agree(reset: str) -> None:
    lif = ALIF(v_threshold=0.2, reset=reset)
    x = torch.randn(6, 4, 8)
    with torch.no_grad():
        fast = lif(x)
    slow = lif(x.clone().requires_grad_(True))
    assert torch.equal(fast, slow.detach())


def test_surrogate_gradient_is_finite_and_peaks_at_threshold() -> None:
    x = torch.linspace(-2, 2, 41, requires_grad=True)
    s = spike_fn(x, alpha=4.0)
    assert s.detach().tolist() == [float(v >= 0) for v in x.detach().tolist()]
    s.sum().backward()
    g = x.grad
    assert g.shape == x.shape and torch.isfinite(g).all()
    assert g[20].item() == pytest.approx(1.0)  # α·σ(0)·(1−σ(0)) = 4·0.25
    assert (g[15:26] > 0.1).all() and g[0] < 0.01 and g.argmax() == 20


def test_gradient_reaches_input_and_threshold_through_the_neuron() -> None:
    lif = ALIF(v_threshold=0.25)
    x = (torch.rand(4, 64) * 0.6).requires_grad_(True)
    lif(x).sum().backward()
    assert x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()
    assert lif.v_threshold.grad is not None and lif.v_threshold.grad < 0  # higher θ → fewer spikes


def test_leaky_readout_keeps_the_final_membrane() -> None:
    x = torch.tensor([[2.0], [0.0], [4.0]])
    # v: 1 → 0.5 → 2.25
    assert leaky_readout(x).item() == pytest.approx(2.25)
    xg = x.clone().requires_grad_(True)
    assert leaky_readout(xg).item() == pytest.approx(2.25)


def test_state_dict_names_match_the_official_neuron() -> None:
    assert set(ALIF().state_dict()) == {"v_threshold", "tau"}


def test_rejects_unknown_reset() -> None:
    with pytest.raises(ValueError, match="reset"):
        ALIF(reset="hard")
