#!/usr/bin/env bash
# OpenMP wait policy against latency, idle and with BUSY other busy processes on the cores.
# usage: tools/omp_wait_sweep.sh [BUSY ...]   (default: 0 2); prints one line per setting and model.
# Results: docs/results/omp_wait_policy.md. Each line: bench median ms, 256², T = 4, counting off/on.
set -euo pipefail
cd "$(dirname "$0")/.."
CLI=${CLI:-.venv/bin/snn-perception}
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(0 2)
for busy in "${levels[@]}"; do
  [[ $busy =~ ^[0-9]+$ ]] || { echo "omp_wait_sweep: error: BUSY $busy: expected a whole number of busy processes, e.g. 0 2" >&2; exit 2; }
done
for busy in "${levels[@]}"; do
  pids=()
  for _ in $(seq 1 "$busy"); do (while :; do :; done) & pids+=($!); done
  trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
  for setting in OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=1000 GOMP_SPINCOUNT=3000 GOMP_SPINCOUNT=10000; do
    for model in spiking_unet dhz; do
      result=$(env -u OMP_WAIT_POLICY "$setting" "$CLI" bench --model "$model" --size 256 --timesteps 4 \
        --runs 9 --warmup 2 | awk '/ off | on /{printf "%s=%s ms ", $3, $4}')
      echo "busy=$busy $setting $model ${result% }"
    done
  done
  kill "${pids[@]}" 2>/dev/null || true
  trap - EXIT
done
