#!/usr/bin/env bash
# #17 dhz_v10: a gain per T on dhz_v3's correction (inference only, no training; README.md). Run at
# stop 36 from the repository root, `make setup` done, ../shared beside it; ~3 min on 2 cores.
set -euo pipefail
.venv/bin/python docs/results/dhz_v10/t_gain_probe.py > docs/results/dhz_v10/t_gain_probe.txt
