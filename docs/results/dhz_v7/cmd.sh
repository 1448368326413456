#!/usr/bin/env bash
# #17: an 80-channel variant, the width docs/results/dhz_v6/ found inside the latency limit
# (~1.1x dhz at 512², T = 4; 96 channels measured 1.27-1.50x). dhz_v6 y's recipe (dhz_v3 widened,
# the added weights stepped 30x) at 80 channels, 8 epochs instead of 4: y's added weights were still
# growing when its validation loss was best (epoch 3 of 4). 2 threads. Run at stop 32 (README.md);
# resumable: re-running continues from runs/dhz_v7z/last.pt and keeps finished scoring.
# Then the same scoring as dhz_v6's pick: the contrast fit, every validation split with the three
# gradings (z/full/: the pixels and global rows are the weights' own), latency.
set -euo pipefail
data=${SNN_SHARED_DIR:-../shared}/data
out=docs/results/dhz_v7
run=runs/dhz_v7z
mkdir -p "$run" "$out/z"
# RECIPE=v4b: dhz_v4 b's settings (dhz_v4/cmd.sh writes them out; test_tools checks they are the same).
RECIPE=v4b DIM=80 WIDEN_LR=30 EPOCHS=8 THREADS=2 tools/dhz_v2_recipe.sh "$data" "$run" >> "$run/train.log" 2>&1
cp "$run/train.log" "$out/z/train.log"
cp "$run/summary.json" "$out/z/train_summary.json"
.venv/bin/python docs/results/dhz_v6/width_use.py "$run/best.safetensors" > "$out/z/width_use.txt"
tools/dhz_full_scoring.sh "$run/best.safetensors" "$out/z"
