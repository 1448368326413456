#!/usr/bin/env bash
# Scores a dehazer v2 candidate for its model card and the dehazer issue's checks, next to the
# previous default (dhz_v1), the published checkpoint (when ../shared/weights has it) and the
# classical method, each at T = 1, 2, 4, 8:
#   EUVP23 (test set, 256²), and the validation split of every training source exactly as
#   tools/dhz_v2_recipe.sh held it out (seed 0, fraction 0.2, at most 40 pairs per source):
#   LSUI 512², EUVP dark 256², UIEB real 256², UFO-120 256²; then `bench` at 256² and 512², T = 4.
#
#   tools/dhz_v2_eval.sh WEIGHTS OUT_DIR     (repository root, venv set up: `make setup`)
# BASELINE (environment, default dhz): the weights to compare with.
set -euo pipefail
weights=${1:?usage: tools/dhz_v2_eval.sh WEIGHTS OUT_DIR}
out=${2:?usage: tools/dhz_v2_eval.sh WEIGHTS OUT_DIR}
data=${SNN_SHARED_DIR:-../shared}/data
mkdir -p "$out"
cli=(.venv/bin/python -m snn_perception.cli)
baseline=${BASELINE:-dhz}
models=("$baseline" "$weights")
if "${cli[@]}" evaluate --task dehaze --data "$data/euvp_test23" --weights dhz_official --limit 1 \
     --size 64x64 --method --no-uiqm --no-progress > /dev/null 2>&1; then models=(dhz_official "${models[@]}"); fi
common=(--timesteps 1 2 4 8 --no-uiqm --no-progress --threads 2)
"${cli[@]}" evaluate --task dehaze --data "$data/euvp_test23" --size 256x256 --weights "${models[@]}" \
  "${common[@]}" --json "$out/euvp23_256.json"
"$(dirname "$0")/dhz_val_splits_eval.sh" "$out" --weights "${models[@]}" "${common[@]}"
for w in "$baseline" "$weights"; do
  "${cli[@]}" bench --model dhz --weights "$w" --size 256 512 --timesteps 4 \
    --json "$out/bench_$(basename "${w%.safetensors}").json"
done
