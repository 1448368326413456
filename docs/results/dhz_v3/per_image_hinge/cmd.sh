#!/usr/bin/env bash
# Does the anytime hinge on every image (--monotone-per image) fix the T sweep on UFO-120 and UIEB?
# A short fine-tune of dhz_v3's selected weights (3 epochs), scored with pixels and global grading.
# Run from the repository root with the venv set up; ../shared beside the repo. Analysis only.
set -euo pipefail
data=${SNN_SHARED_DIR:-../shared}/data
run=${RUN:-runs/dhz_v3_hinge}
out=docs/results/dhz_v3/per_image_hinge
INIT=runs/dhz_v3/best.safetensors MIX="2 1 1 1" W_SSIM=1 W_TV=0.05 ANYTIME_WEIGHTS="1 1 2 2" MONOTONE=2 \
  MONOTONE_PER=image EPOCHS=3 EPOCH_SIZE=320 LR=1e-4 tools/dhz_v2_recipe.sh "$data" "$run"
for spec in ufo120_sample:256 uieb_real:256 lsui_pairs:512 euvp_dark:256; do
  src=${spec%%:*} size=${spec##*:}
  .venv/bin/python -m snn_perception.cli evaluate --task dehaze --data "$data/$src" --split val --seed 0 \
    --val-fraction 0.2 --val-max 40 --size "${size}x${size}" --weights "$run/best.safetensors" \
    --timesteps 1 2 4 8 --grading pixels global --method --no-uiqm --no-progress --threads 2 \
    --json "$out/${src}_val_${size}.json"
done
.venv/bin/python tools/dhz_eval_table.py --sweep "$out"/*_val_*.json > "$out/sweep.md"
