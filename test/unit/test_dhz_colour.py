"""RGB → scaled CIELAB as the DHZ LAB branch sees it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from snn_perception.models.colour import rgb_to_lab_scaled


def test_white_and_black_have_neutral_chroma() -> None:
    x = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2).contiguous()
    lab = rgb_to_lab_scaled(x)[0, :, 0]
    np.testing.assert_allclose(lab[:, 0].numpy(), [1.0, 1.28, 1.28], atol=1e-4)
    np.testing.assert_allclose(lab[:, 1].numpy(), [0.0, 1.28, 1.28], atol=1e-4)


def test_pure_red_matches_the_cie_values() -> None:
    lab = rgb_to_lab_scaled(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))[0, :, 0, 0].numpy()
    np.testing.assert_allclose(lab, [53.24 / 100, (80.09 + 128) / 100, (67.20 + 128) / 100], atol=2e-3)


def test_agrees_with_scikit_image_on_random_pixels() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((16, 16, 3)).astype(np.float32)
    ours = rgb_to_lab_scaled(torch.from_numpy(img).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    ref = rgb2lab(img, illuminant="D65")
    ref = np.stack([ref[..., 0] / 100, (ref[..., 1] + 128) / 100, (ref[..., 2] + 128) / 100], -1)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_rejects_non_rgb_input() -> None:
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        rgb_to_lab_scaled(torch.zeros(1, 4, 2, 2))
