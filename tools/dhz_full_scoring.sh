#!/usr/bin/env bash
# The full scoring of a dehazer candidate picked by the recipe's rule (#17), on everything but the
# test set: its contrast model fitted on the training splits (saved beside the weights as
# NAME_contrast.safetensors), every source's validation split with the three gradings at
# T = 1, 2, 4, 8, and its latency against the default `dhz`, interleaved (512², T = 4, three rounds:
# one run on a shared machine varies by ±15 %). Resumable: finished steps are kept.
#
#   tools/dhz_full_scoring.sh WEIGHTS OUT      (repository root, `make setup` done; ../shared beside)
# Writes OUT/contrast_fit.{json,txt}, OUT/full/*.json + sweep.md, OUT/bench_interleaved.txt.
set -euo pipefail
weights=${1:?usage: tools/dhz_full_scoring.sh WEIGHTS OUT}
out=${2:?usage: tools/dhz_full_scoring.sh WEIGHTS OUT}
[[ -f $weights ]] || { echo "tools/dhz_full_scoring.sh: $weights: no such weights file" >&2; exit 2; }
data=${SNN_SHARED_DIR:-../shared}/data
here=$(dirname "$0")
py=$here/../.venv/bin/python
[[ -x $py ]] || py=python
contrast=${weights%.safetensors}_contrast.safetensors
mkdir -p "$out"
[[ -f $contrast ]] || "$py" "$here/dhz_contrast_fit.py" --data "$data" --weights "$weights" --clip 1.5 \
  --json "$out/contrast_fit.json" --save "$contrast" | tee "$out/contrast_fit.txt"
KEEP=1 "$here/dhz_val_splits_eval.sh" "$out/full" --weights "$contrast" --timesteps 1 2 4 8 \
  --grading pixels global contrast --no-uiqm --no-progress --threads 2
"$py" "$here/dhz_eval_table.py" --sweep "$out/full"/*.json > "$out/full/sweep.md"
[[ -f $out/bench_interleaved.txt ]] || for round in 1 2 3; do
  for w in dhz "$weights"; do
    "$py" -m snn_perception.cli bench --model dhz --weights "$w" --size 512 --timesteps 4 --no-counting
  done
done | tee "$out/bench_interleaved.txt"
