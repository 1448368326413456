#!/usr/bin/env bash
# Evaluates dehazer weights on the validation split of every source tools/dhz_v2_recipe.sh trains
# on, exactly as the recipe held it out (seed 0, fraction 0.2, at most 40 pairs per source), each at
# its scoring size: LSUI 512², EUVP dark, UIEB real and UFO-120 256². One JSON per source,
# OUT/<source>_val_<size><SUFFIX>.json. EUVP23 (the test set) is never read here.
#
#   tools/dhz_val_splits_eval.sh OUT [evaluate options ...]    (repository root, `make setup` done)
#   e.g. tools/dhz_val_splits_eval.sh runs/x/eval --weights runs/x/best.safetensors --timesteps 1 2 4 8
# Environment: SUFFIX (default empty), KEEP=1 (skip sources whose JSON exists: resumable), CLI
# ("snn-perception" command; default: this repo's).
set -euo pipefail
out=${1:?usage: tools/dhz_val_splits_eval.sh OUT [evaluate options ...]}
shift
data=${SNN_SHARED_DIR:-../shared}/data
py=$(dirname "$0")/../.venv/bin/python
[[ -x $py ]] || py=python
read -r -a cli <<< "${CLI:-$py -m snn_perception.cli}"
mkdir -p "$out"
for spec in lsui_pairs:512 euvp_dark:256 uieb_real:256 ufo120_sample:256; do
  src=${spec%%:*} size=${spec##*:}
  json=$out/${src}_val_${size}${SUFFIX:-}.json
  if [[ ${KEEP:-0} == 1 && -f $json ]]; then echo "== kept $json"; continue; fi
  "${cli[@]}" evaluate --task dehaze --data "$data/$src" --split val --seed 0 \
    --val-fraction 0.2 --val-max 40 --size "${size}x${size}" "$@" --json "$json"
done
