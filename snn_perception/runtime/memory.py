"""Will a frame fit in memory? A check before inference, so a huge frame is refused in a moment
with a message that says what to do, instead of swapping the machine or dying after seconds.

Peak memory of one frame grows with the model's input pixels and with T (the batched multi-step
path holds every step's activations). Measured with ``ru_maxrss`` on this package's models
(2026-12-05, CPU, counting on): snnTrans-DHZ ≈ 150 + 250·T bytes per input pixel (1024², T = 4:
0.89–1.0 GB; T = 1: 0.38 GB), the Spiking-UNet ≈ 150 + 370·T (1024², T = 8 counting: 2.97 GB).
The check refuses a frame whose estimate exceeds 80 % of the memory the kernel says is available.
"""

from __future__ import annotations

from pathlib import Path

#: architecture → (bytes per input pixel, bytes per input pixel and timestep)
COST: dict[str, tuple[int, int]] = {
    "snntrans_dhz": (150, 250),
    "spiking_unet": (150, 370),
    "spiking_lite_unet": (150, 370),
    "unet": (150, 370),  # an ANN runs one step
    "lite_unet": (150, 370),
}
_FALLBACK = (150, 370)
#: share of the available memory a frame may take
HEADROOM = 0.8

#: The nodes' and ``enhance``'s default cap on model-input pixels (VGA, 640×480): larger frames run
#: the model at the largest size of the same aspect ratio under it, their outputs resized back to
#: the frame's size. Why VGA: on 2 cores the shipped dhz at T = 4 takes ~0.26 s and 0.7 GiB there,
#: against 1.6 s and 2.7 GiB at 1080p (``docs/results/resolution_table.md``, from ``bench``); a
#: camera at VGA or less runs at its own size. 0 turns the cap off; an explicit model size
#: (``--size``, input_width/height) wins.
DEFAULT_MAX_MODEL_PIXELS = 640 * 480


def capped_hw(hw: tuple[int, int], max_pixels: int, multiple: int = 8) -> tuple[int, int]:
    """``hw`` if it has at most ``max_pixels`` pixels (or the cap is 0), else the largest size of the
    same aspect ratio under the cap, each side a multiple of ``multiple`` (at least ``multiple``)."""
    h, w = int(hw[0]), int(hw[1])
    if max_pixels <= 0 or h * w <= max_pixels:
        return h, w
    scale = (max_pixels / (h * w)) ** 0.5
    return (
        max(multiple, int(h * scale) // multiple * multiple),
        max(multiple, int(w * scale) // multiple * multiple),
    )


class FrameTooLarge(ValueError):
    """A frame would need more memory than the machine has available; the message says what to do."""


def estimate_bytes(arch: str, hw: tuple[int, int], timesteps: int) -> int:
    """Predicted peak memory of one frame of ``hw`` model-input pixels at ``timesteps`` steps."""
    fixed, per_step = COST.get(arch, _FALLBACK)
    return int(hw[0] * hw[1] * (fixed + per_step * max(1, timesteps)))


def available_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """``MemAvailable`` from the kernel (None where there is no /proc/meminfo: no check then)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_fits(arch: str, hw: tuple[int, int], timesteps: int, available: int | None = None) -> None:
    """:class:`FrameTooLarge` when a frame would need more than :data:`HEADROOM` of ``available``
    (default: what the kernel reports now)."""
    available = available_bytes() if available is None else available
    if available is None:
        return
    need = estimate_bytes(arch, hw, timesteps)
    if need > HEADROOM * available:
        gb = 1024**3
        side = _fitting_side(arch, timesteps, HEADROOM * available)
        raise FrameTooLarge(
            f"a {hw[1]}×{hw[0]} frame at T={timesteps} needs about {need / gb:.1f} GB, and "
            f"{available / gb:.1f} GB is available: run the model at a smaller size (e.g. "
            f"{side}x{side}: enhance/segment --size, the nodes' input_width/input_height) or a lower T"
        )


def _fitting_side(arch: str, timesteps: int, budget: float) -> int:
    fixed, per_step = COST.get(arch, _FALLBACK)
    side = int((budget / (fixed + per_step * max(1, timesteps))) ** 0.5) // 16 * 16
    return max(16, side)
