#!/usr/bin/env bash
# Counting on/off with the fused Numba neuron and counting kernels (default) and with the torch path
# (SNN_EVENT_KERNELS=torch), alternated, three rounds; 2 threads, T=4, median of 15 runs each.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
out=docs/results/bench_cpu/neuron_kernels
cli=.venv/bin/snn-perception
for round in 1 2 3; do
  for path in numba torch; do
    SNN_EVENT_KERNELS=$path $cli bench --model dhz --size 256 512 --timesteps 4 --threads 2 --runs 15 \
      --json $out/dhz_${path}_r$round.json > $out/dhz_${path}_r$round.txt 2>&1
    SNN_EVENT_KERNELS=$path $cli bench --model spiking_unet --size 256 --timesteps 4 --threads 2 --runs 15 \
      --json $out/spiking_unet_${path}_r$round.json > $out/spiking_unet_${path}_r$round.txt 2>&1
  done
done
