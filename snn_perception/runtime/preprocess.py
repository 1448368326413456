"""Image array ↔ model tensor: validation, scaling, resizing and padding to a size multiple."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from snn_perception.runtime.contrast import ContrastModel, local_contrast
from snn_perception.runtime.grading import float_to_uint8, global_grading, validate_grading


def image_to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``H×W×3`` RGB (uint8, or float in [0, 1]) → ``[1, 3, H, W]`` float32 in [0, 1]."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array (H×W×3 RGB), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H×W×3 RGB, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image is empty: shape {image.shape}")
    if image.dtype == np.uint8:
        t = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1).float().div_(255.0)
    elif image.dtype in (np.float32, np.float64):
        t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(device).permute(2, 0, 1)
    else:
        raise ValueError(f"image dtype must be uint8 or float32/float64 in [0, 1], got {image.dtype}")
    return t.unsqueeze(0).contiguous()


def is_grey(rgb: np.ndarray) -> bool:
    """An ``H×W×3`` image whose three channels are equal (a mono camera or a greyscale file)."""
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def finish_dehaze(
    output: np.ndarray,
    source: np.ndarray,
    strength: float = 1.0,
    mono: bool = False,
    grading: str = "pixels",
    model_hw: tuple[int, int] | None = None,
    contrast: ContrastModel | None = None,
) -> np.ndarray:
    """The dehazer's float output → the uint8 image a person sees (node, ``enhance`` alike).

    ``grading``: ``pixels`` keeps the network's output; ``global`` publishes the input graded as the
    network graded it (:mod:`snn_perception.runtime.grading`), before ``strength`` and ``mono``;
    ``contrast`` adds local contrast of the strength ``contrast`` (the weights' fitted model,
    required then) predicts for the frame (:mod:`snn_perception.runtime.contrast`);
    ``model_hw``: the size the model ran at (``FrameStats.model_hw``), which those fits need.

    ``strength`` blends it with the input (0 = the input, 1 = the network's output), so a user can
    temper a colour correction that overshoots on neutral scenes (white sand turning pink). ``mono``
    returns the output's luminance as ``H×W``: a mono camera's image stays mono instead of picking
    up the tint the network learned from colour water.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength {strength}: must be between 0 (the input) and 1 (the full output)")
    if validate_grading(grading) != "pixels":
        if grading == "contrast" and contrast is None:
            raise ValueError(
                "grading 'contrast' needs weights that carry a fitted contrast model "
                "(tools/dhz_contrast_fit.py --save); use 'global' or 'pixels' with these"
            )
        output = global_grading(source, output, model_hw)
        if grading == "contrast":
            output, _ = local_contrast(source, output, contrast, model_hw)
    out = (
        output
        if strength == 1.0
        else source.astype(np.float32) / 255.0 * (1.0 - strength) + output * strength
    )
    u8 = float_to_uint8(out)
    return cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY) if mono else u8


def resize(x: torch.Tensor, hw: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize ``[B, C, H, W]``; bilinear with antialiasing when shrinking (as the DHZ training did)."""
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=hw, mode="nearest")
    return F.interpolate(x, size=hw, mode=mode, align_corners=False, antialias=True)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad bottom/right to a multiple (replicate when the image is too small to reflect).

    Returns the padded tensor and the original ``(H, W)`` for :func:`crop`.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def crop(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    return x[..., : hw[0], : hw[1]]


#: the largest model side a size argument accepts (a 8192² frame already needs gigabytes at T=4)
MAX_SIDE = 8192


def parse_hw(text: str) -> tuple[int, int]:
    """``'512'`` or ``'480x640'`` (H×W) → ``(H, W)``; raises ValueError with the accepted forms."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(
            f"size {text!r}: expected N or HxW with positive integers, e.g. 512 or 480x640"
        ) from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise ValueError(f"size {text!r}: expected N or HxW with positive integers, e.g. 512 or 480x640")
    if max(values) > MAX_SIDE:
        raise ValueError(f"size {text!r}: each side must be at most {MAX_SIDE} pixels")
    return values[0], values[1]
