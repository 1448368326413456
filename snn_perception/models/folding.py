"""Batch-norm folding: a convolution followed by an eval-mode BatchNorm2d is one convolution.

Conversion folds every BN before it normalises weights, and the ANN baselines fold theirs for
inference; both use :func:`fold_conv_bn`, so the two cannot fold differently.
"""

from __future__ import annotations

import torch
from torch import nn


def fold_conv_bn(conv: nn.Conv2d, bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of ``conv`` with an eval-mode ``bn`` after it folded in (any groups); a ``bn``
    that is not a BatchNorm2d (an Identity) leaves them as they are."""
    w = conv.weight.detach().clone()
    b = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(w.shape[0], device=w.device)
    if isinstance(bn, nn.BatchNorm2d):
        gamma = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        w = w * gamma.reshape(-1, 1, 1, 1)
        b = (b - bn.running_mean) * gamma + bn.bias.detach()
    return w, b
