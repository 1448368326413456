#!/usr/bin/env bash
# Scores the dehazers' two gradings (pixels: the network's output; global: the input graded as the
# network graded it) on EUVP23 (test set, 256²) and on the validation split of every training source
# as tools/dhz_v2_recipe.sh held it out (seed 0, fraction 0.2, at most 40 pairs per source), T = 1,
# 2, 4, 8, with the model at the scoring size and capped at MAX_PIXELS (default 16384 = 128²).
#
#   tools/dhz_grading_eval.sh OUT_DIR [WEIGHTS ...]     (repository root; default weights: dhz dhz_v2)
set -euo pipefail
out=${1:?usage: tools/dhz_grading_eval.sh OUT_DIR [WEIGHTS ...]}
shift
if [[ $# -gt 0 ]]; then weights=("$@"); else weights=(dhz dhz_v2); fi
data=${SNN_SHARED_DIR:-../shared}/data
cap=${MAX_PIXELS:-16384}
mkdir -p "$out"
cli=(.venv/bin/python -m snn_perception.cli)
common=(--weights "${weights[@]}" --timesteps 1 2 4 8 --grading pixels global --no-uiqm --no-progress --threads 2)
for pixels in 0 "$cap"; do
  "${cli[@]}" evaluate --task dehaze --data "$data/euvp_test23" --size 256x256 "${common[@]}" \
    --max-pixels "$pixels" --json "$out/euvp_test23_256_model${pixels}.json"
  SUFFIX=_model$pixels "$(dirname "$0")/dhz_val_splits_eval.sh" "$out" "${common[@]}" --max-pixels "$pixels"
done
