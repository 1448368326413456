"""The weight average matches a hand-computed EMA, ramps its decay, and round-trips for resuming."""

from __future__ import annotations

import pytest
import torch

from snn_perception.offline.ema import WeightAverage


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def test_average_matches_hand_computed_values() -> None:
    net = _net()
    ema = WeightAverage(net, decay=0.5)
    start = net[0].weight.detach().clone()
    history = [start]
    for step in range(3):
        with torch.no_grad():
            net[0].weight.add_(1.0 + step)
        net.train()(torch.randn(5, 3))  # moves the BatchNorm statistics and its counter
        history.append(net[0].weight.detach().clone())
        ema.update(net)
    # decays ramp as min(0.5, (1 + n) / (10 + n)): 0.1, 0.1818…, 0.25
    want = start
    for n, w in enumerate(history[1:]):
        d = min(0.5, (1 + n) / (10 + n))
        want = d * want + (1 - d) * w
    torch.testing.assert_close(ema.model[0].weight, want)
    assert int(ema.model[1].num_batches_tracked) == int(net[1].num_batches_tracked) == 3
    assert not torch.equal(ema.model[1].running_mean, net[1].running_mean)  # averaged, not copied
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_decay_reaches_its_setting_after_the_ramp() -> None:
    ema = WeightAverage(_net(), decay=0.99)
    assert ema.current_decay() == pytest.approx(0.1)
    ema.updates = 10_000
    assert ema.current_decay() == 0.99


def test_state_round_trips_through_weights_only_load(tmp_path) -> None:
    net = _net()
    ema = WeightAverage(net, decay=0.9)
    with torch.no_grad():
        net[0].bias.add_(3.0)
    ema.update(net)
    torch.save(ema.state_dict(), tmp_path / "ema.pt")
    other = WeightAverage(_net(), decay=0.9)
    other.load_state_dict(torch.load(tmp_path / "ema.pt", weights_only=True))
    assert other.updates == 1
    torch.testing.assert_close(other.model[0].bias, ema.model[0].bias)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, float("nan")])
def test_decay_outside_zero_one_is_refused(decay: float) -> None:
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        WeightAverage(_net(), decay)
