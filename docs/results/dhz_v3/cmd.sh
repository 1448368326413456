#!/usr/bin/env bash
# Dehazer v3 candidate (#17): how it was trained, its contrast model fitted, and how it was scored.
# Run from the repository root with the venv set up (`make setup`); ../shared beside the repo.
set -euo pipefail
data=${SNN_SHARED_DIR:-../shared}/data
run=${RUN:-runs/dhz_v3}
out=docs/results/dhz_v3

# 1. training (2 CPU cores; resumable: re-running continues from $run/last.pt)
INIT=dhz_v2 MIX="2 1 1 0.5" W_SSIM=1 W_TV=0.05 ANYTIME_WEIGHTS="1 1 2 2" MONOTONE=1 EPOCHS=7 EPOCH_SIZE=320 \
  LR=2e-4 tools/dhz_v2_recipe.sh "$data" "$run"

# 2. the contrast grading's strength model, fitted on the training splits only (--save: a copy of the
#    weights carrying it)
[[ -f $run/best_contrast.safetensors ]] || .venv/bin/python tools/dhz_contrast_fit.py --data "$data" \
  --weights "$run/best.safetensors" --clip 1.5 --json "$out/contrast_fit.json" \
  --save "$run/best_contrast.safetensors" | tee "$out/contrast_fit.txt"

# 3. scores: EUVP23 (test set) and every source's validation split as training held it out, T sweep,
#    the network's pixels, the global grading and the contrast grading
common=(--weights "$run/best_contrast.safetensors" --timesteps 1 2 4 8 --grading pixels global contrast
        --no-uiqm --no-progress --threads 2)
.venv/bin/python -m snn_perception.cli evaluate --task dehaze --data "$data/euvp_test23" --size 256x256 \
  "${common[@]}" --json "$out/euvp23_256.json" | tee "$out/eval.log"
for spec in lsui_pairs:512 uieb_real:256 euvp_dark:256 ufo120_sample:256; do
  src=${spec%%:*} size=${spec##*:}
  .venv/bin/python -m snn_perception.cli evaluate --task dehaze --data "$data/$src" --split val --seed 0 \
    --val-fraction 0.2 --val-max 40 --size "${size}x${size}" "${common[@]}" \
    --json "$out/${src}_val_${size}.json" | tee -a "$out/eval.log"
done
