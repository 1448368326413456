"""The segmentation class legend: which colour is which class, and how much of the frame it covers.

A class-id mask is unreadable without it (ids 0..7 open as a black image, colours mean nothing
on their own). One place draws it for every consumer (``segment``'s ``legend.png`` and table, the
replay report), and one place holds the colour table (:func:`class_palette`), so the legend's
swatches are exactly the colours of the masks they explain.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: the seed of the fixed colours given to class ids that the weights name no colour for
FALLBACK_SEED = 0

# layout of legend_image, in pixels
_PAD = 10
_ROW = 26
_SWATCH_W = 36
_SWATCH_H = 18
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SCALE = 0.5
_TEXT = (20, 20, 20)
_TITLE = "class (share of pixels)"


def class_palette(colors: Sequence[Sequence[int]], num_classes: int = 0) -> np.ndarray:
    """The RGB colour of every class id: ``(max(256, n), 3)`` uint8, the weights' colours first.

    Ids beyond the weights' colours get fixed pseudo-random ones, the same in every run.
    """
    n = max(256, num_classes, len(colors))
    lut = np.random.default_rng(FALLBACK_SEED).integers(0, 256, (n, 3), dtype=np.uint8)
    for i, c in enumerate(colors):
        lut[i] = tuple(int(v) for v in c)
    return lut


def colorize(ids: np.ndarray, colors: Sequence[Sequence[int]]) -> np.ndarray:
    """H×W class ids → H×W×3 uint8 RGB through :func:`class_palette`."""
    top = int(ids.max()) + 1 if ids.size else 0
    return class_palette(colors, top)[ids]


def overlay(rgb: np.ndarray, color: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image blended with its class colours (``alpha`` = the colours' opacity), rounded to uint8:
    the segment node's ``~/overlay``, ``segment``'s ``NAME_overlay.png`` and the replay contact sheet."""
    return (rgb.astype(np.float32) * (1.0 - alpha) + color.astype(np.float32) * alpha + 0.5).astype(np.uint8)


def legend_entries(
    names: Sequence[str], colors: Sequence[Sequence[int]], num_classes: int
) -> tuple[list[str], list[tuple[int, int, int]]]:
    """(name, colour) of every class, ``class i`` where the weights name none."""
    n = max(num_classes, len(names), len(colors))
    lut = class_palette(colors, n)
    return (
        [str(names[i]) if i < len(names) else f"class {i}" for i in range(n)],
        [tuple(int(v) for v in lut[i]) for i in range(n)],
    )


def class_shares(counts: Sequence[int] | np.ndarray) -> list[float]:
    """Pixel counts per class → shares that sum to 1 (all 0 when no pixel was counted)."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    return [0.0] * len(c) if total <= 0 else [float(v) for v in c / total]


def legend_table(
    names: Sequence[str], colors: Sequence[Sequence[int]], shares: Sequence[float] | None = None
) -> str:
    """The legend as text: class name, RGB colour and (when given) share of the pixels in %."""
    width = max([len("class"), *(len(n) for n in names)])
    head = f"{'class':<{width}}  {'colour (RGB)':<15}" + ("  share" if shares is not None else "")
    lines = [head.rstrip(), "-" * len(head.rstrip())]
    for i, (name, rgb) in enumerate(zip(names, colors, strict=True)):
        col = f"({rgb[0]:3d}, {rgb[1]:3d}, {rgb[2]:3d})"
        share = f"  {shares[i] * 100:5.1f} %" if shares is not None else ""
        lines.append(f"{name:<{width}}  {col:<15}{share}".rstrip())
    return "\n".join(lines)


def swatch_boxes(count: int) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right), bottom/right exclusive, of each swatch in :func:`legend_image`."""
    boxes = []
    for i in range(count):
        top = _PAD + _ROW * (i + 1) + (_ROW - _SWATCH_H) // 2
        boxes.append((top, _PAD, top + _SWATCH_H, _PAD + _SWATCH_W))
    return boxes


def legend_image(
    names: Sequence[str], colors: Sequence[Sequence[int]], shares: Sequence[float] | None = None
) -> np.ndarray:
    """The legend as an RGB uint8 image: per class a colour swatch, its name and its share in %."""

    def width_of(text: str) -> int:
        return cv2.getTextSize(text, _FONT, _SCALE, 1)[0][0]

    pct = [f"{shares[i] * 100:.1f} %" for i in range(len(names))] if shares is not None else []
    name_w = max(width_of(str(n)) for n in names) if names else 0
    pct_w = max((width_of(t) for t in pct), default=0)
    text_w = max(width_of(_TITLE), name_w + (16 + pct_w if pct else 0))
    width = _PAD + _SWATCH_W + 10 + text_w + _PAD
    height = _PAD * 2 + _ROW * (len(names) + 1)
    img = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(img, _TITLE, (_PAD, _PAD + _ROW - 8), _FONT, _SCALE, _TEXT, 1, cv2.LINE_AA)
    for i, ((top, left, bottom, right), rgb) in enumerate(zip(swatch_boxes(len(names)), colors, strict=True)):
        # a grey frame around (not over) the swatch keeps white and pale classes visible
        cv2.rectangle(img, (left - 1, top - 1), (right, bottom), (128, 128, 128), 1)
        img[top:bottom, left:right] = tuple(int(v) for v in rgb)
        cv2.putText(img, str(names[i]), (right + 10, bottom - 4), _FONT, _SCALE, _TEXT, 1, cv2.LINE_AA)
        if pct:  # right-aligned, so the shares read as a column
            x = width - _PAD - width_of(pct[i])
            cv2.putText(img, pct[i], (x, bottom - 4), _FONT, _SCALE, _TEXT, 1, cv2.LINE_AA)
    return img
