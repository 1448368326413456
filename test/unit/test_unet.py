"""ANN U-Net: shapes, heads, widths, activation sites."""

import pytest
import torch

from snn_perception.models.unet import WIDTHS, UNet, UNetConfig, count_parameters, site_names


@pytest.mark.parametrize("hw", [(32, 48), (64, 64)])
def test_segment_head_gives_class_scores_at_input_size(hw):
    model = UNet(UNetConfig(width=4, num_classes=5)).eval()
    assert model(torch.rand(2, 3, *hw)).shape == (2, 5, *hw)
    assert model.size_multiple == 16


def test_denoise_head_subtracts_the_predicted_noise():
    model = UNet(UNetConfig(width=4, head="denoise")).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), x - model.head_output(x))


def test_every_site_is_tapped_in_execution_order_and_is_nonnegative():
    model = UNet(UNetConfig(width=4, num_classes=3)).eval()
    taps = {}
    model(torch.rand(1, 3, 32, 32), taps)
    assert list(taps) == site_names()
    assert all(float(a.detach().min()) >= 0 for a in taps.values())
    assert len(site_names()) == 26


def test_parameter_count_grows_with_width_and_classic_width_is_large():
    counts = [count_parameters(UNet(UNetConfig(width=w, batch_norm=False))) for w in WIDTHS]
    assert counts == sorted(counts)
    assert 30e6 < counts[-1] < 35e6  # the classic U-Net scale (issue: 34.5M with its head)


@pytest.mark.parametrize("kwargs", [{"width": 0}, {"head": "detect"}, {"num_classes": 1}])
def test_bad_config_is_refused_with_the_field_named(kwargs):
    with pytest.raises(ValueError, match="UNetConfig"):
        UNetConfig(**kwargs)


@pytest.mark.parametrize("dim", [0, 1])
def test_class_ids_equal_argmax_ties_included(dim: int) -> None:
    """The fast per-pixel class (max(dim).indices) is argmax, first index on ties."""
    from snn_perception.models.unet import class_ids

    g = torch.Generator().manual_seed(dim)
    scores = torch.randint(0, 3, (2, 8, 33, 47), generator=g).float()  # many ties
    scores = scores[0] if dim == 0 else scores
    assert torch.equal(class_ids(scores, dim), scores.argmax(dim))
