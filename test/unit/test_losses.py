"""The restoration loss's parts equal hand-computed values on toy pairs."""

from __future__ import annotations

import pytest
import torch

from snn_perception.offline.losses import (
    LossWeights,
    RestorationLoss,
    anytime_loss,
    consistency_loss,
    total_variation,
)

C1, C2 = 0.01**2, 0.03**2


def test_constant_pair_matches_closed_form() -> None:
    a, b = 0.6, 0.2
    pred = torch.full((1, 3, 32, 32), a)
    target = torch.full((1, 3, 32, 32), b)
    total, parts = RestorationLoss(LossWeights(mse=1.0, ssim=0.5, tv=0.25))(pred, target)
    mse = (a - b) ** 2
    ssim = (2 * a * b + C1) / (a * a + b * b + C1)  # variances are zero: contrast·structure = C2/C2
    assert parts["mse"] == pytest.approx(mse, rel=1e-5)
    assert parts["ssim_loss"] == pytest.approx(1 - ssim, rel=1e-4)
    assert parts["tv"] == 0.0
    assert float(total) == pytest.approx(mse + 0.5 * (1 - ssim), rel=1e-4)


def test_total_variation_of_a_ramp() -> None:
    # values 0, 0.1, 0.2, ... along width; constant along height
    ramp = (torch.arange(8, dtype=torch.float32) * 0.1).expand(1, 1, 4, 8)
    assert float(total_variation(ramp)) == pytest.approx(0.1, rel=1e-5)
    checker = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).expand(1, 1, 2, 2)
    assert float(total_variation(checker)) == pytest.approx(2.0)


def test_weights_scale_the_parts() -> None:
    torch.manual_seed(0)
    pred, target = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24)
    total, parts = RestorationLoss(LossWeights(mse=2.0, ssim=0.0, tv=1.0))(pred, target)
    assert float(total) == pytest.approx(2 * parts["mse"] + parts["tv"], rel=1e-5)


def test_loss_is_differentiable() -> None:
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    total, _ = RestorationLoss()(pred, torch.rand(1, 3, 16, 16))
    total.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_anytime_loss_weighs_the_read_outs_and_charges_only_rises() -> None:
    falling = [torch.tensor(0.3), torch.tensor(0.2), torch.tensor(0.1)]
    assert float(anytime_loss(falling)) == pytest.approx(0.2)
    assert float(anytime_loss(falling, [1.0, 1.0, 2.0])) == pytest.approx((0.3 + 0.2 + 0.2) / 4)
    assert float(anytime_loss(falling, monotone=5.0)) == pytest.approx(0.2)  # nothing rises
    rising = [torch.tensor(0.1), torch.tensor(0.3, requires_grad=True), torch.tensor(0.2)]
    total = anytime_loss(rising, monotone=2.0)
    assert float(total.detach()) == pytest.approx(0.2 + 2.0 * 0.2)  # only the 0.1 → 0.3 step rises
    total.backward()
    assert float(rising[1].grad) == pytest.approx(1 / 3 + 2.0)  # pushed down by the hinge too


@pytest.mark.parametrize("weights, match", [([1.0, 1.0], "2 weights for 3"), (None, "at least one")])
def test_anytime_loss_rejects_mismatched_inputs(weights: list[float] | None, match: str) -> None:
    losses = [torch.tensor(0.1)] * 3 if weights else []
    with pytest.raises(ValueError, match=match):
        anytime_loss(losses, weights)


def test_per_image_losses_average_to_the_batch_loss_and_let_the_hinge_see_each_image() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 3, 24, 24, generator=g)
    pred = (target + 0.1 * torch.randn(3, 3, 24, 24, generator=g)).clamp(0, 1)
    loss = RestorationLoss(LossWeights(mse=1.0, ssim=0.5, tv=0.25))
    batch, parts = loss(pred, target)
    each, each_parts = loss(pred, target, per_image=True)
    assert each.shape == (3,)
    assert float(each.mean()) == pytest.approx(float(batch), rel=1e-5)
    assert each_parts == pytest.approx(parts, rel=1e-5)
    # image 0 gets worse from one read-out to the next while the others improve more
    first = torch.tensor([0.10, 0.50, 0.50])
    second = torch.tensor([0.20, 0.30, 0.30])
    mean = (first.mean() + second.mean()) / 2
    assert float(anytime_loss([first.mean(), second.mean()], monotone=1.0)) == pytest.approx(float(mean))
    per = float(anytime_loss([first, second], monotone=1.0))
    assert per == pytest.approx(float(mean) + 0.1 / 3)  # plus the mean of the per-image hinges


def test_consistency_pulls_earlier_read_outs_toward_the_last_which_learns_nothing_from_it() -> None:
    first = torch.zeros(1, 3, 4, 4, requires_grad=True)
    second = torch.full((1, 3, 4, 4), 0.5, requires_grad=True)
    last = torch.ones(1, 3, 4, 4, requires_grad=True)
    loss = consistency_loss([first, second, last])
    assert float(loss.detach()) == pytest.approx((1.0 + 0.25) / 2)  # mean of the two MSEs to the last
    loss.backward()
    assert last.grad is None  # the teacher is held fixed
    assert float(first.grad.sum()) < 0 and float(second.grad.sum()) < 0  # both pushed up, toward 1
    assert float(consistency_loss([last.detach(), last.detach()])) == 0.0
    with pytest.raises(ValueError, match="two or more"):
        consistency_loss([last])
