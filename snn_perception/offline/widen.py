"""Widen a trained snnTrans-DHZ's transformer (more channels) without changing what it computes.

Why: a wider network trained from scratch costs GPU-days; started from trained weights it needs
only a fine-tune. Each new channel keeps the fresh initialisation of the layer that computes it,
and every old channel reads the new ones through weights set to zero, so the wider network's
output equals the narrow one's (up to float rounding) at the first step. Those zero weights get
gradients at once (the new channels are active), so training can put the width to use; the
heads keep their width (channels per head) and the new channels form new heads.
"""

from __future__ import annotations

import torch
from torch import nn

from snn_perception.models.dhz import SnnTransDHZ


class WidenError(ValueError):
    """Two networks that widening cannot map onto each other (the message says why)."""


def _channel_map(small: int, big: int, dim_small: int, dim_big: int, what: str) -> torch.Tensor:
    """Where each of ``small`` channels lands among ``big``: the same size maps onto itself, a
    concatenation of ``m`` transformer-width blocks (``m·dim``) maps block by block."""
    if small == big:
        return torch.arange(small)
    blocks = small // dim_small
    if small % dim_small or big != blocks * dim_big:
        raise WidenError(
            f"{what}: {small} channels do not widen to {big} ({dim_small} → {dim_big} per block)"
        )
    j = torch.arange(small)
    return (j // dim_small) * dim_big + j % dim_small


def _axes(module: nn.Module, name: str) -> tuple[int, int | None]:
    """(output axis, input axis or None) of a parameter or buffer."""
    if name == "weight" and isinstance(module, nn.ConvTranspose2d):
        return 1, 0
    if name == "weight" and isinstance(module, (nn.Conv1d, nn.Conv2d)):
        return 0, 1
    return 0, None


@torch.no_grad()
def widen_into(small: SnnTransDHZ, big: SnnTransDHZ) -> dict[str, torch.Tensor]:
    """Copy ``small``'s weights into the wider ``big`` (same architecture otherwise), in place.

    ``big`` arrives freshly initialised; its new channels keep that initialisation, except the
    weights from a new channel into an old one, which become zero. Returns, for each parameter
    that grew, a boolean mask of the entries widening added (for :class:`WidthLR`).
    """
    added: dict[str, torch.Tensor] = {}
    cs, cb = small.cfg, big.cfg
    if cb.dim < cs.dim or cb.dim // cb.heads != cs.dim // cs.heads:
        raise WidenError(
            f"cannot widen dim {cs.dim} ({cs.heads} heads) to dim {cb.dim} ({cb.heads} heads): the wider "
            "network needs at least as many channels and the same channels per head"
        )
    for key in ("variant", "reset", "blocks", "readout", "tau"):
        if getattr(cs, key) != getattr(cb, key):
            raise WidenError(f"cannot widen: {key} {getattr(cs, key)!r} differs from {getattr(cb, key)!r}")
    small_modules = dict(small.named_modules())
    for name, module in big.named_modules():
        old = small_modules[name]
        params = dict(module.named_parameters(recurse=False))
        own = {**params, **dict(module.named_buffers(recurse=False))}
        theirs = {**dict(old.named_parameters(recurse=False)), **dict(old.named_buffers(recurse=False))}
        for key, target in own.items():
            source = theirs[key]
            if source.shape == target.shape:
                target.copy_(source)
                continue
            out_axis, in_axis = _axes(module, key)
            what = f"{name}.{key}"
            rows = _channel_map(source.shape[out_axis], target.shape[out_axis], cs.dim, cb.dim, what)
            new = torch.ones_like(target, dtype=torch.bool)
            view, src, fresh = (
                target.movedim(out_axis, 0),
                source.movedim(out_axis, 0),
                new.movedim(out_axis, 0),
            )
            if in_axis is None:
                view[rows] = src
                fresh[rows] = False
            else:
                in_at = in_axis if in_axis > out_axis else in_axis + 1
                view, src, fresh = view.movedim(in_at, 1), src.movedim(in_at, 1), fresh.movedim(in_at, 1)
                cols = _channel_map(src.shape[1], view.shape[1], cs.dim, cb.dim, what)
                view[rows] = 0  # old outputs ignore every new input ...
                view[rows.unsqueeze(1), cols.unsqueeze(0)] = src  # ... and keep their old weights
                fresh[rows.unsqueeze(1), cols.unsqueeze(0)] = False
            if key in params:
                added[f"{name}.{key}" if name else key] = new
    return added


class WidthLR:
    """Multiplies the optimiser's step by ``scale`` on the entries widening added.

    Why: those entries start at zero (or know nothing yet) while the old ones are trained, and
    Adam moves every entry by about the learning rate per step, so in a short fine-tune at a
    fine-tuning rate the new channels stay a few percent of the old ones' weight
    (``docs/results/dhz_v6/``). A larger step for them alone lets the width be used without
    disturbing the trained weights more than the rest of the run does.
    """

    def __init__(self, model: nn.Module, added: dict[str, torch.Tensor], scale: float) -> None:
        self.scale = float(scale)
        self.pairs = [(p, added[n].to(p.device)) for n, p in model.named_parameters() if n in added]

    def step(self, opt: torch.optim.Optimizer) -> None:
        if self.scale == 1.0 or not self.pairs:
            opt.step()
            return
        before = [p.detach().clone() for p, _ in self.pairs]
        opt.step()
        with torch.no_grad():
            for (p, mask), old in zip(self.pairs, before, strict=True):
                p.add_((p - old) * mask, alpha=self.scale - 1.0)
