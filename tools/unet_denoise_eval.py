"""Denoising: ANN vs Spiking-UNet PSNR/SSIM on clean images with Gaussian noise of a fixed σ.

Thin front door for :func:`snn_perception.offline.denoise_eval.main` (its docstring gives a full command);
``--help`` lists the options. Bad input ends in one ``error:`` line (exit 2), not a traceback.
"""

from __future__ import annotations

import sys

from snn_perception.offline.denoise_eval import main


def run() -> int:
    try:
        return main() or 0
    except (ValueError, OSError) as e:  # WeightsError is a ValueError; OSError: missing files
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())
