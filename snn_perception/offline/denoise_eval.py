"""Denoising: ANN vs Spiking-UNet PSNR/SSIM on clean images with Gaussian noise of a fixed σ.

    python tools/unet_denoise_eval.py --weights runs/unet_denoise_w8/best.safetensors \\
        runs/unet_denoise_w8/snn_ft4.safetensors --images ../shared/data/euvp_test23/reference \\
        --sigma 25 --timesteps 4,8 --json docs/results/spiking_unet_denoise.json

Same noise for every model (seeded per run), images resized to ``--size``, outputs clamped to
[0, 1]; the noisy input itself is scored as the baseline.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from snn_perception.offline.run_checks import require


def main(argv: list[str] | None = None) -> int:
    from snn_perception.offline.convert import load_unet
    from snn_perception.offline.finetune import evaluate_snn_denoise
    from snn_perception.offline.metrics import psnr, ssim
    from snn_perception.offline.seg_data import ImageFolder, image_only_pairs

    p = argparse.ArgumentParser(
        prog="python tools/unet_denoise_eval.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--weights", nargs="+", required=True)
    p.add_argument("--images", required=True, help="folder of clean images")
    p.add_argument("--sigma", type=float, default=25.0, help="noise σ on the 0-255 scale")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--timesteps", type=lambda s: [int(v) for v in s.split(",")], default=[4])
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    require(args.threads >= 1, "--threads", args.threads, "at least 1")
    torch.set_num_threads(args.threads)
    images = [x for x, _ in ImageFolder(image_only_pairs(args.images), (args.size, args.size))]
    gen = torch.Generator().manual_seed(args.seed)
    base = {"psnr": [], "ssim": []}
    for clean in images:
        noisy = (clean + (args.sigma / 255.0) * torch.randn(clean.shape, generator=gen)).clamp(0, 1)
        a, b = noisy.permute(1, 2, 0).numpy(), clean.permute(1, 2, 0).numpy()
        base["psnr"].append(psnr(a, b))
        base["ssim"].append(ssim(a, b))
    rows = [
        {
            "model": "noisy input",
            "timesteps": None,
            "psnr": sum(base["psnr"]) / len(images),
            "ssim": sum(base["ssim"]) / len(images),
        }
    ]
    for w in args.weights:
        model, ckpt = load_unet(w)
        if model.config.head != "denoise":
            print(f"error: {w}: a {model.config.head} model, not a denoiser", file=sys.stderr)
            return 2
        ts = args.timesteps if ckpt.metadata["arch"] == "spiking_unet" else [1]
        with torch.no_grad():
            scores = evaluate_snn_denoise(model, images, ts, args.sigma, args.seed)
        for t, sc in scores.items():
            rows.append(
                {
                    "model": str(w),
                    "arch": ckpt.metadata["arch"],
                    "sha256": ckpt.sha256,
                    "timesteps": t if ckpt.metadata["arch"] == "spiking_unet" else None,
                    **sc,
                }
            )
    for r in rows:
        t = "-" if r["timesteps"] is None else r["timesteps"]
        print(f"{r['model'][-40:]:>40} T={t}: PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.4f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "images": args.images,
            "count": len(images),
            "sigma": args.sigma,
            "size": args.size,
            "seed": args.seed,
            "rows": rows,
            "command": "python tools/unet_denoise_eval.py " + " ".join(sys.argv[1:]),
        }
        args.json.write_text(json.dumps(doc, indent=2, default=lambda v: None if math.isnan(v) else v))
    return 0
