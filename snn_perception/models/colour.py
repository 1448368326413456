"""RGB → CIELAB as snnTrans-DHZ sees it: L/100, (a+128)/100, (b+128)/100.

kornia's ``rgb_to_lab`` (sRGB → linear → XYZ under D65 → CIELAB) is the conversion the official
model was trained with; calling it keeps the LAB spike code bit-identical to the original.
It is imported on first use, so the segmenters (which build through the same registry) do not
need kornia.
"""

from __future__ import annotations

import torch


def rgb_to_lab_scaled(rgb: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` RGB in [0, 1] → LAB scaled to roughly [0, 1] per channel."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb_to_lab_scaled expects [B, 3, H, W], got {tuple(rgb.shape)}")
    from kornia.color import rgb_to_lab

    lab = rgb_to_lab(rgb)
    return torch.cat((lab[:, 0:1] / 100, (lab[:, 1:2] + 128) / 100, (lab[:, 2:3] + 128) / 100), dim=1)
