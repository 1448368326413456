#!/usr/bin/env bash
# Dehazer v2: one set of weights for every kind of water, anytime in T.
#
#   tools/dhz_v2_recipe.sh SHARED_DATA OUT [cpu|cuda]
#
# Fine-tunes the shipped `dhz` on four pair sources at once (LSUI, EUVP dark, UIEB real, UFO-120),
# each with its own validation split (seed 0, 20 %, at most 40 pairs per source; LSUI keeps the
# 16 validation pairs `dhz` never saw), with the normalized read-out and a loss on the outputs after
# 1, 2, 4 and 8 steps of one run (anytime in T). Selection, fixed before scoring: the lowest
# validation loss at T = 4, each source weighing the same. euvp_test23 is never read here.
# Re-running resumes from OUT/last.pt. Settings (environment): EPOCHS=14 EPOCH_SIZE=400 LR=3e-4
# THREADS=2 MIX="1 1 1 0.5" INIT=dhz W_SSIM=0.5 W_TV=0.25 ANYTIME_WEIGHTS="" (equal) MONOTONE=0
# MONOTONE_PER=batch SEED=0 (crops, augmentation and order; the split seed stays 0) DIM=64
# (transformer channels; wider than INIT's widens its weights, see `train dhz --dim`) WIDEN_LR=1
# (the step multiplier of the weights widening adds, `train dhz --widen-lr`) CONSISTENCY=0 (weight of
# the pull of earlier read-outs toward T = 8's image, `train dhz --consistency`)
# CLI ("snn-perception" command; default: this repo's).
# RECIPE=NAME starts from a named recipe's settings instead of the defaults above (any setting given
# in the environment still wins): v4b, the fine-tune docs/results/dhz_v4 picked (b) and dhz_v6/v7
# widened: INIT=dhz_v3 MIX="8 1 1 0.5" W_SSIM=1 W_TV=0.05 ANYTIME_WEIGHTS="0.5 0.5 2 1" MONOTONE=1
# MONOTONE_PER=image EPOCHS=4 EPOCH_SIZE=320 LR=1e-4.
set -euo pipefail
DATA=${1:?usage: tools/dhz_v2_recipe.sh SHARED_DATA OUT [cpu|cuda]}
OUT=${2:?usage: tools/dhz_v2_recipe.sh SHARED_DATA OUT [cpu|cuda]}
DEVICE=${3:-cpu}
case ${RECIPE:-} in
  "") ;;
  v4b) : "${INIT=dhz_v3}" "${MIX=8 1 1 0.5}" "${W_SSIM=1}" "${W_TV=0.05}" "${ANYTIME_WEIGHTS=0.5 0.5 2 1}"
       : "${MONOTONE=1}" "${MONOTONE_PER=image}" "${EPOCHS=4}" "${EPOCH_SIZE=320}" "${LR=1e-4}" ;;
  *) echo "error: RECIPE='$RECIPE' is not a named recipe; accepted: v4b (or leave RECIPE unset)" >&2; exit 2 ;;
esac
EPOCHS=${EPOCHS:-14} EPOCH_SIZE=${EPOCH_SIZE:-400} LR=${LR:-3e-4} THREADS=${THREADS:-2}
INIT=${INIT:-dhz} W_SSIM=${W_SSIM:-0.5} W_TV=${W_TV:-0.25} MONOTONE=${MONOTONE:-0}
MONOTONE_PER=${MONOTONE_PER:-batch} SEED=${SEED:-0} DIM=${DIM:-64}
WIDEN_LR=${WIDEN_LR:-1} CONSISTENCY=${CONSISTENCY:-0}
read -r -a MIX <<< "${MIX:-1 1 1 0.5}"
read -r -a ANYTIME_WEIGHTS <<< "${ANYTIME_WEIGHTS:-}"
# the repository's venv when there is one (make setup), else the python on PATH
py=$(dirname "$0")/../.venv/bin/python
[[ -x $py ]] || py=python
read -r -a CLI <<< "${CLI:-$py -m snn_perception.cli}"

args=(train dhz --data "$DATA/lsui_pairs" "$DATA/euvp_dark" "$DATA/uieb_real" "$DATA/ufo120_sample"
      --source-resize 512 0 256 256 --mix "${MIX[@]}" --epoch-size "$EPOCH_SIZE" --val-max 40
      --val-fraction 0.2 --split-seed 0 --seed "$SEED" --crop 256 --timesteps 4 --anytime 1 2 4 8 --readout normalized
      --extra-water 0.3 --tone-jitter 0.3 --init "$INIT" --lr "$LR" --min-lr 1e-5 --batch 4
      --epochs "$EPOCHS" --device "$DEVICE" --threads "$THREADS" --no-progress --out "$OUT"
      --w-ssim "$W_SSIM" --w-tv "$W_TV" --monotone "$MONOTONE"
      --monotone-per "$MONOTONE_PER" --dim "$DIM")
if [[ $WIDEN_LR != 1 ]]; then args+=(--widen-lr "$WIDEN_LR"); fi
if [[ $CONSISTENCY != 0 ]]; then args+=(--consistency "$CONSISTENCY"); fi
if ((${#ANYTIME_WEIGHTS[@]})); then args+=(--anytime-weights "${ANYTIME_WEIGHTS[@]}"); fi
if [[ -f $OUT/summary.json ]]; then echo "== done earlier ($OUT)"
elif [[ -f $OUT/last.pt ]]; then "${CLI[@]}" "${args[@]}" --resume "$OUT/last.pt"
else "${CLI[@]}" "${args[@]}"; fi
