#!/usr/bin/env bash
# #17: is UFO-120's falling T sweep a matter of how rarely the trainer sees UFO-120? Its training split
# (18 pairs) has raw frames 14.8-25.9 dB from their references (mean 21.1), so it does show near-raw
# references, but dhz_v4 b's mix draws it for 4.8 % of the pairs. dhz_v4 b's run (RECIPE=v4b, 64
# channels, from dhz_v3, per-image monotone hinge) with one change: UFO-120's mix weight 0.5 -> 2
# (MIX="8 1 1 2": LSUI 67 %, EUVP dark 8.3 %, UIEB 8.3 %, UFO-120 16.7 % of draws; b: 76 / 9.5 / 9.5 /
# 4.8). Fixed before scoring. 2 threads. Run at stop 34 (README.md); resumable: re-running continues
# from runs/dhz_v9u/last.pt and keeps finished scoring. Then dhz_v6/v7/v8's scoring
# (tools/dhz_full_scoring.sh). EUVP23 (the test set) is not read.
set -euo pipefail
data=${SNN_SHARED_DIR:-../shared}/data
out=docs/results/dhz_v9
run=runs/dhz_v9u
mkdir -p "$run" "$out/u"
RECIPE=v4b MIX="8 1 1 2" THREADS=2 tools/dhz_v2_recipe.sh "$data" "$run" >> "$run/train.log" 2>&1
cp "$run/train.log" "$out/u/train.log"
cp "$run/summary.json" "$out/u/train_summary.json"
tools/dhz_full_scoring.sh "$run/best.safetensors" "$out/u"
# the same weights on UFO-120's training split (the cap's overflow included, as the trainer drew it)
[[ -f $out/u/train_split/ufo120_sample_train_256.json ]] || { mkdir -p "$out/u/train_split"
  .venv/bin/python -m snn_perception.cli evaluate --task dehaze --data "$data/ufo120_sample" --split train \
    --seed 0 --val-fraction 0.2 --val-max 40 --size 256x256 --weights "$run/best.safetensors" \
    --timesteps 1 2 4 8 --grading pixels --no-uiqm --no-progress --threads 2 \
    --json "$out/u/train_split/ufo120_sample_train_256.json"; }
# how much it changes a frame at each T, against how much the reference asks for
[[ -f $out/u/correction_size.txt ]] || .venv/bin/python "$out/u/correction_size.py" > "$out/u/correction_size.txt"
