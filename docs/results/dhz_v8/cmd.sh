#!/usr/bin/env bash
# #17: does pulling the earlier read-outs toward T = 8's image (`train dhz --consistency`) make the
# T sweeps non-decreasing where the hinge did not (UFO-120, whose references are barely corrected)?
# dhz_v4 b's run (RECIPE=v4b, 64 channels, from dhz_v3) with one change: CONSISTENCY=20, fixed before
# scoring from the training loss alone: a first start with 4 measured the term at 0.0011 against the
# restoration MSE's 0.021 after epoch 1 (runs/dhz_v8c_w4_abandoned/), 2 % of the loss, too weak to
# test anything; 20 makes the two equal. 2 threads. Run at stop 33 (README.md); resumable: re-running continues from
# runs/dhz_v8c/last.pt and keeps finished scoring. Then dhz_v6/v7's scoring (tools/dhz_full_scoring.sh).
set -euo pipefail
data=${SNN_SHARED_DIR:-../shared}/data
out=docs/results/dhz_v8
run=runs/dhz_v8c
mkdir -p "$run" "$out/c"
RECIPE=v4b CONSISTENCY=20 THREADS=2 tools/dhz_v2_recipe.sh "$data" "$run" >> "$run/train.log" 2>&1
cp "$run/train.log" "$out/c/train.log"
cp "$run/summary.json" "$out/c/train_summary.json"
tools/dhz_full_scoring.sh "$run/best.safetensors" "$out/c"
