"""Training loss for image restoration: MSE + w_ssim·(1 − SSIM) + w_tv·TV.

MSE drives PSNR, the SSIM term keeps structure and local contrast (what plain MSE
blurs away), and a small total-variation term suppresses the blocky artefacts that
2×2 transposed-conv decoders of spiking networks tend to produce.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.metrics import ssim as kornia_ssim


@dataclass(frozen=True)
class LossWeights:
    mse: float = 1.0
    ssim: float = 0.5
    tv: float = 0.25


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between horizontal and between vertical neighbours."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return dh + dw


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (11×11 Gaussian window, σ = 1.5, data range 1) on [0, 1]-clamped inputs."""
    return kornia_ssim(pred.clamp(0.0, 1.0), target, window_size=11, max_val=1.0).mean()


class RestorationLoss(torch.nn.Module):
    """Returns the weighted total and its parts (for logging)."""

    def __init__(self, weights: LossWeights = LossWeights()) -> None:
        super().__init__()
        self.weights = weights

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        mse = F.mse_loss(pred, target)
        ssim_term = 1.0 - ssim(pred, target)
        tv = total_variation(pred)
        w = self.weights
        total = w.mse * mse + w.ssim * ssim_term + w.tv * tv
        named = {"mse": mse, "ssim_loss": ssim_term, "tv": tv, "total": total}
        parts = {k: float(v.detach()) for k, v in named.items()}
        return total, parts
