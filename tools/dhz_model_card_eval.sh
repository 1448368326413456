#!/usr/bin/env bash
# Regenerates the comparison table of snn_perception/weights/dhz.md.
# Usage: tools/dhz_model_card_eval.sh WEIGHTS OUT_DIR   (needs ../shared for the data and the
# published checkpoint; run from the repository root with the venv set up: `make setup`).
set -euo pipefail
weights=${1:-snn_perception/weights/dhz.safetensors}
out=${2:-docs/results/dhz_default}
shared=${SNN_SHARED_DIR:-../shared}
mkdir -p "$out"
cli=(.venv/bin/python -m snn_perception.cli)
# LSUI: the 16 validation images the shipped model never trained on (split seed 0, fraction 0.2), 512x512
"${cli[@]}" evaluate --task dehaze --data "$shared/data/lsui_pairs" --split val --size 512x512 \
  --weights "$shared/weights/snntrans_dhz_official_T4.pth" "$weights" --json "$out/lsui_val_512.json"
# LSUI: the 65 training images, 512x512 (how well it fits what it saw, next to the published model)
"${cli[@]}" evaluate --task dehaze --data "$shared/data/lsui_pairs" --split train --size 512x512 \
  --weights "$shared/weights/snntrans_dhz_official_T4.pth" "$weights" --json "$out/lsui_train_512.json"
# EUVP test (23 pairs, never trained on), 256x256
"${cli[@]}" evaluate --task dehaze --data "$shared/data/euvp_test23" --size 256x256 \
  --weights "$shared/weights/snntrans_dhz_official_T4.pth" "$weights" --json "$out/euvp23_256.json"
# Energy and latency at 512x512 and 256x256, T=4, next to the published checkpoint
"${cli[@]}" bench --model dhz --weights "$weights" --size 256 512 --timesteps 4 --json "$out/bench_ours.json"
"${cli[@]}" bench --model dhz --weights "$shared/weights/snntrans_dhz_official_T4.pth" --size 256 512 \
  --timesteps 4 --json "$out/bench_official.json"
