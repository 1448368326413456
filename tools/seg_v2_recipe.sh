#!/usr/bin/env bash
# Segmenter v2, end to end: LiteUNet ANN on an ImageNet encoder -> conversion to spiking ->
# spiking-flow fine-tuning -> validation scores of all three (T = 1, 2, 4, 8).
#
#   tools/seg_v2_recipe.sh DATA OUT [cpu|cuda]
#
# DATA: a folder with images/ + masks/ (SUIM: ../shared/data/suim_trainval). Every step writes into
# OUT and resumes (or is skipped) when re-run, so a killed run continues where it stopped.
# Settings (environment, defaults = the CPU recipe): EPOCHS=50 CROP=224 BATCH=8 LR=1e-3
# FT_EPOCHS=3 FT_BATCH=8 WORKERS=1 THREADS=2 PRETRAINED=wheel (or the Lite0 .pth file)
# MAX_MINUTES (fit the ANN training into it) CLI ("snn-perception" command; default: this repo's).
set -euo pipefail
DATA=${1:?usage: tools/seg_v2_recipe.sh DATA OUT [cpu|cuda]}
OUT=${2:?usage: tools/seg_v2_recipe.sh DATA OUT [cpu|cuda]}
DEVICE=${3:-cpu}
EPOCHS=${EPOCHS:-50} CROP=${CROP:-224} BATCH=${BATCH:-8} LR=${LR:-1e-3}
FT_EPOCHS=${FT_EPOCHS:-3} FT_BATCH=${FT_BATCH:-8} WORKERS=${WORKERS:-1} THREADS=${THREADS:-2}
PRETRAINED=${PRETRAINED:-wheel}
read -r -a CLI <<< "${CLI:-python -m snn_perception.cli}"
mkdir -p "$OUT"

ann=(train unet --arch lite --pretrained "$PRETRAINED" --augment full --dice 0.5 --data "$DATA"
     --crop "$CROP" --batch "$BATCH" --lr "$LR" --epochs "$EPOCHS" --device "$DEVICE"
     --workers "$WORKERS" --threads "$THREADS" --out "$OUT/ann")
[[ -n ${MAX_MINUTES:-} ]] && ann+=(--max-minutes "$MAX_MINUTES")
if [[ -f $OUT/ann/summary.json ]]; then echo "== ANN: done earlier ($OUT/ann)"
elif [[ -f $OUT/ann/last.pt ]]; then "${CLI[@]}" "${ann[@]}" --resume "$OUT/ann/last.pt"
else "${CLI[@]}" "${ann[@]}"; fi

[[ -f $OUT/snn.safetensors ]] || "${CLI[@]}" convert --weights "$OUT/ann/best.safetensors" --data "$DATA" \
    --calib 64 --timesteps 4 --device "$DEVICE" --threads "$THREADS" --out "$OUT/snn.safetensors"

ft=(finetune --weights "$OUT/snn.safetensors" --data "$DATA" --timesteps 4 --epochs "$FT_EPOCHS"
    --batch "$FT_BATCH" --lr 1e-4 --device "$DEVICE" --workers "$WORKERS" --threads "$THREADS"
    --out "$OUT/snn_ft.safetensors")
if [[ ! -f $OUT/snn_ft.safetensors ]]; then
  if [[ -f $OUT/snn_ft_finetune/last.pt ]]; then "${CLI[@]}" "${ft[@]}" --resume "$OUT/snn_ft_finetune/last.pt"
  else "${CLI[@]}" "${ft[@]}"; fi
fi

rm -f "$OUT/eval_val.json"
"${CLI[@]}" evaluate --task segment --data "$DATA" --split val --device "$DEVICE" --threads "$THREADS" \
    --weights "$OUT/ann/best.safetensors" "$OUT/snn.safetensors" "$OUT/snn_ft.safetensors" \
    --timesteps 1,2,4,8 --json "$OUT/eval_val.json"
