#!/usr/bin/env bash
# One-command GPU check (a few minutes on one GPU): run it on a machine with CUDA and ../shared.
#
#   tools/gpu_check.sh [OUT]        (OUT: where the logs and JSON go; default gpu_check_out)
#
# 1. the CUDA tests (pytest -m cuda): fp32 on CUDA matches the official CPU outputs within 1e-4;
# 2. bench of both models at 512² and 1080×1920, T = 1, 4, 8, counting off and on (fp32), and dhz
#    at 512² in tf32 and bf16 with their PSNR against fp32;
# 3. one short training step of each model on the GPU (train dhz, train unet --arch lite).
# PYTHON (default python3), SNN_SHARED_DIR (default ../shared) and OUT may be set.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu_check_out}
PY=${PYTHON:-python3}
SHARED=${SNN_SHARED_DIR:-../shared}
export SNN_SHARED_DIR=$SHARED PYTHONUNBUFFERED=1
mkdir -p "$OUT"
CLI=("$PY" -m snn_perception.cli)
fails=0
step() { printf '\n== %s\n' "$1"; }
run() { "$@" || { echo "FAILED: $*"; fails=$((fails + 1)); }; }

step "GPU"
run "$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"

step "CUDA tests (pytest -m cuda)"
run "$PY" -m pytest -q -m cuda -p no:cacheprovider -s test/unit/test_precision_scope.py

step "bench: dhz and spiking_unet, 512² and 1080p, T = 1 4 8, counting off/on"
for model in dhz spiking_unet; do
  run "${CLI[@]}" bench --model "$model" --device cuda --size 512 1080x1920 --timesteps 1 4 8 \
      --runs 10 --warmup 3 --json "$OUT/bench_${model}.json"
done
run "${CLI[@]}" bench --model unet_ann --device cuda --size 512 1080x1920 --runs 10 --warmup 3 \
    --json "$OUT/bench_unet_ann.json"
for p in tf32 bf16; do
  run "${CLI[@]}" bench --model dhz --device cuda --size 512 --timesteps 4 --precision "$p" --runs 10 \
      --warmup 3 --no-counting --json "$OUT/bench_dhz_$p.json"
done

step "one short training run of each model on the GPU"
run "${CLI[@]}" train dhz --data "$SHARED/data/lsui_pairs" --epochs 1 --batch 4 --crop 128 --device cuda \
    --out "$OUT/train_dhz" --overwrite
run "${CLI[@]}" train unet --arch lite --data "$SHARED/data/suim_trainval" --limit 32 --epochs 1 --batch 8 \
    --device cuda --workers 2 --out "$OUT/train_unet" --overwrite

step "done: $fails failed step(s)"
exit $((fails > 0))
