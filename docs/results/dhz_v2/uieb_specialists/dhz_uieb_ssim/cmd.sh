#!/usr/bin/env bash
# UIEB-only specialist from dhz_v2, SSIM-heavy loss (w_ssim 2 instead of 0.5): can this architecture beat gray-world+CLAHE's SSIM on the UIEB
# validation split when it sees nothing but UIEB? (dehazer issue, point 4). Resumes from last.pt.
cd "$(git rev-parse --show-toplevel)"  # run from anywhere in the repository
OUT=runs/dhz_uieb_ssim
args=(train dhz --data ../shared/data/uieb_real --source-resize 0 --mix 1 --epoch-size 240 --val-max 40
      --val-fraction 0.2 --split-seed 0 --crop 256 --timesteps 4 --readout normalized
      --extra-water 0.3 --tone-jitter 0.3 --init dhz_v2 --lr 3e-4 --min-lr 1e-5 --batch 4 --w-ssim 2
      --epochs 8 --device cpu --threads 2 --no-progress --out "$OUT")
if [[ -f $OUT/last.pt ]]; then exec .venv/bin/python -m snn_perception.cli "${args[@]}" --resume "$OUT/last.pt"
else exec .venv/bin/python -m snn_perception.cli "${args[@]}"; fi
