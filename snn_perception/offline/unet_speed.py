"""Spiking-UNet latency next to its own ANN, measured in one process through the runtime engine.

    python tools/unet_speed.py --snn spiking_unet --ann unet_suim_ann \\
        --json docs/results/spiking_unet_speed.json

The budget from issue 4: the spiking run should cost at most 1.3 × T ANN passes (the
convolutions alone cost T dense passes; neurons, accumulation and the static first layer should
add little), and the shipped default at its default T ≤ 0.15 s per 256×256 frame on 2 threads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from snn_perception.offline.run_checks import require


def _median_ms(engine, frame, timesteps: int, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        engine.run(frame, timesteps=timesteps, count_ops=False)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        engine.run(frame, timesteps=timesteps, count_ops=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def measure(snn: str, ann: str, sizes, timesteps, threads: int = 2, runs: int = 7, warmup: int = 2) -> dict:
    import numpy as np
    import torch

    from snn_perception.runtime.engine import Engine, EngineConfig

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    rows = []
    for hw in sizes:
        frame = rng.integers(0, 256, (hw[0], hw[1], 3), dtype=np.uint8)
        cfg = EngineConfig(input_hw=tuple(hw))
        e_snn = Engine.load(snn, cfg, task="segment")
        e_ann = Engine.load(ann, cfg, task="segment")
        ann_ms = _median_ms(e_ann, frame, 1, runs, warmup)
        for t in timesteps:
            snn_ms = _median_ms(e_snn, frame, t, runs, warmup)
            rows.append(
                {
                    "size": list(hw),
                    "timesteps": t,
                    "snn_ms": snn_ms,
                    "ann_ms": ann_ms,
                    "snn_over_t_ann": snn_ms / (t * ann_ms),
                }
            )
    return {
        "threads": threads,
        "runs": runs,
        "snn": snn,
        "ann": ann,
        "rows": rows,
        "cpu": os.cpu_count(),
        "torch": __import__("torch").__version__,
    }


def to_markdown(doc: dict) -> str:
    lines = ["| size (H×W) | T | SNN ms | ANN ms | SNN / (T · ANN) |", "|---|---|---|---|---|"]
    for r in doc["rows"]:
        lines.append(
            f"| {r['size'][0]}×{r['size'][1]} | {r['timesteps']} | {r['snn_ms']:.1f} | "
            f"{r['ann_ms']:.1f} | {r['snn_over_t_ann']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python tools/unet_speed.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--snn", default="spiking_unet")
    p.add_argument("--ann", default="unet_suim_ann")
    p.add_argument("--sizes", nargs="+", default=["256x256", "240x320"])
    p.add_argument("--timesteps", nargs="+", type=int, default=[2, 4, 8])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    require(args.threads >= 1, "--threads", args.threads, "at least 1")
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    doc = measure(args.snn, args.ann, sizes, args.timesteps, args.threads, args.runs)
    print(to_markdown(doc))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2))
    return 0
