"""Fan-out geometry of convolutions: how many (output, tap) pairs read each input, exact at borders.

Host arithmetic on shapes only (cached), split from :mod:`counting` so the counter reads as the
device-side bookkeeping and this as the geometry it relies on. Away from the borders the fan-out
is periodic (period 1 for stride 1, the stride otherwise), which :func:`frame` exploits: a sum
over the map becomes the interior constant times a total plus a correction over a thin frame.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple


@functools.lru_cache(maxsize=1024)
def fan_out_1d(
    length: int, kernel: int, stride: int = 1, padding: int = 0, upsample: int = 1
) -> tuple[int, ...]:
    """For each input index, how many (output position, kernel tap) pairs read it along one axis
    (``upsample``: through a nearest upsampling, an index stands for that many positions)."""
    if upsample > 1:
        fine = fan_out_1d(length * upsample, kernel, stride, padding)
        return tuple(sum(fine[i * upsample : (i + 1) * upsample]) for i in range(length))
    out_len = (length + 2 * padding - kernel) // stride + 1
    nums = [[y + padding - k for k in range(kernel)] for y in range(length)]  # output index · stride
    return tuple(sum(0 <= v and v % stride == 0 and v // stride < out_len for v in ns) for ns in nums)


def dense_conv_macs(
    shape: Sequence[int], out_channels: int, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1
) -> float:
    """MACs of a convolution over a dense (analog) ``[N, C_in, H, W]`` input, borders exact: equal
    to ``conv_ops(torch.ones(shape), ...)``, from the shape alone (host arithmetic)."""
    n, c, h, w = (int(v) for v in shape)
    taps = sum(fan_out_1d(h, kernel, stride, padding)) * sum(fan_out_1d(w, kernel, stride, padding))
    return float(n * c * taps) * (out_channels // groups)


class Frame(NamedTuple):
    """Closed form of ``Σ rows(y)·cols(x)·m(y, x)`` for a convolution on ``h × w``.

    Away from the borders the fan-out is periodic (period 1 for stride 1, the stride otherwise):
    ``rows(y) = pr[y mod Pr]``. So the sum is ``Σ_ij pr[i]·pc[j]·M_ij`` (``M_ij``: active inputs
    with ``y ≡ i``, ``x ≡ j``; the total for stride 1) plus a correction over the border frame.
    """

    base: int  # stride 1: r0·c0, the fan-out of an input away from the borders; else 0
    period: tuple[int, int]  # (Pr, Pc)
    residue_base: tuple[float, ...]  # pr[i]·pc[j], row-major over (i, j)
    top: int  # border rows / columns whose fan-out differs from the periodic interior
    bottom: int
    left: int
    right: int
    weights: tuple[float, ...]  # rows·cols − pr·pc over the frame (top, bottom, left, right blocks)
    #: one-pixel frame (stride 1): weights of the two edge rows, the two edge columns between
    #: them, and the corners' correction (constant along each edge, so totals suffice)
    edge: tuple[float, ...] | None


def bands(fan: tuple[int, ...]) -> tuple[tuple[int, ...], int, int] | None:
    """``(interior pattern, leading band, trailing band)`` for the period (≤ 4) with the narrowest
    border bands, or None if they would be wide."""
    n, m = len(fan), len(fan) // 2
    if not n:
        return (0,), 0, 0
    best = None
    for period in range(1, min(4, m + 1) + 1):
        pattern = tuple(fan[m - ((m - r) % period)] for r in range(period))
        lead = 1 + max((i for i in range(m) if fan[i] != pattern[i % period]), default=-1)
        trail = n - min((i for i in range(m, n) if fan[i] != pattern[i % period]), default=n)
        if best is None or lead + trail < best[1] + best[2]:
            best = (pattern, lead, trail)
    return best if best[1] + best[2] <= min(n, 16) else None


@functools.lru_cache(maxsize=1024)
def frame(h: int, w: int, kernel: int, stride: int, padding: int, upsample: int = 1) -> Frame | None:
    """The frame decomposition, or None where it does not apply (tiny or irregular maps)."""
    rows, cols = (fan_out_1d(n, kernel, stride, padding, upsample) for n in (h, w))
    rb, cb = bands(rows), bands(cols)
    if rb is None or cb is None:
        return None
    (pr, top, bottom), (pc, left, right) = rb, cb

    def wt(y: int, x: int) -> float:
        return float(rows[y] * cols[x] - pr[y % len(pr)] * pc[x % len(pc)])

    mid = range(top, h - bottom)
    wts = [wt(y, x) for y in (*range(top), *range(h - bottom, h)) for x in range(w)]
    if left == right == 1 and w > 1:  # one strided view of both columns: (y, 0), (y, w − 1), …
        wts += [wt(y, x) for y in mid for x in (0, w - 1)]
    else:
        wts += [wt(y, x) for y in mid for x in range(left)]
        wts += [wt(y, x) for y in mid for x in range(w - right, w)]
    residue = tuple(float(a * b) for a in pr for b in pc)
    base = pr[0] * pc[0] if len(residue) == 1 else 0
    edge = None
    if base and top == bottom == left == right == 1 and h > 2 and w > 2:
        sides = (wt(0, 1), wt(h - 1, 1), wt(1, 0), wt(1, w - 1))
        edge = (*sides, *(wt(y, x) - sides[y > 0] for y in (0, h - 1) for x in (0, w - 1)))
    return Frame(base, (len(pr), len(pc)), residue, top, bottom, left, right, tuple(wts), edge)
