"""Latency of snnTrans-DHZ widths at 512², T = 4 (2 threads), interleaved rounds so that a busy
moment of a shared machine hits every width alike: `dhz_v3` widened (untrained new channels, so
spike rates are indicative only) to each width. Prints each round and the median per width.

    .venv/bin/python docs/results/dhz_v6/width_latency.py [--widths 64 80 96] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from snn_perception.models import registry
from snn_perception.models.dhz import SnnTransDHZ
from snn_perception.offline.train_dhz_config import HEAD_WIDTH, MIN_DIM
from snn_perception.offline.widen import widen_into
from snn_perception.runtime.checkpoint import load_checkpoint, load_into
from snn_perception.runtime.weights import resolve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 80, 96])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per width and round (median)")
    args = parser.parse_args()
    if args.rounds < 1 or args.runs < 1 or any(w < MIN_DIM or w % HEAD_WIDTH for w in args.widths):
        parser.error(f"--rounds and --runs at least 1; --widths multiples of {HEAD_WIDTH} from {MIN_DIM}")
    torch.set_num_threads(2)
    ckpt = load_checkpoint(resolve("dhz_v3"))
    base = registry.build("snntrans_dhz", ckpt.metadata)
    load_into(base, ckpt)
    models = {}
    for w in args.widths:
        torch.manual_seed(0)
        m = SnnTransDHZ(dataclasses.replace(base.cfg, dim=w, heads=w // HEAD_WIDTH))
        widen_into(base, m)
        m.eval().requires_grad_(False)
        m.prepare_inference()
        models[w] = m
    x = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    per_width: dict[int, list[float]] = {w: [] for w in models}
    with torch.inference_mode():
        for r in range(args.rounds):
            for w, m in models.items():
                m(x, 4)  # warm-up
                times = []
                for _ in range(args.runs):
                    t = time.perf_counter()
                    m(x, 4)
                    times.append(time.perf_counter() - t)
                per_width[w].append(statistics.median(times) * 1e3)
                print(f"round {r + 1} width {w}: {per_width[w][-1]:.1f} ms", flush=True)
    ref = statistics.median(per_width[args.widths[0]])
    for w, ms in per_width.items():
        med = statistics.median(ms)
        print(f"width {w}: median {med:.1f} ms, {med / ref:.2f}x width {args.widths[0]}")


if __name__ == "__main__":
    main()
