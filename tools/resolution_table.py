"""Latency and memory by resolution and T, for the README: ``bench`` once per model and size, each in
its own process (peak RSS is a process-wide maximum, so sizes must not share one), T ascending.

    .venv/bin/python tools/resolution_table.py --out docs/results/resolution_table.md

Prints a Markdown table (median latency of ``--runs`` frames and the process's peak RSS after each
T, counting off, ``--threads`` CPU threads) and writes it with the command that made it. Bad
arguments: one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from snn_perception.runtime.memory import DEFAULT_MAX_MODEL_PIXELS, capped_hw

SIZES = ((256, 256), (480, 640), (720, 1280), (1080, 1920))
MODELS = ("dhz", "spiking_unet")


def _bench(model: str, hw: tuple[int, int], steps: list[int], runs: int, threads: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [
            sys.executable, "-m", "snn_perception.cli", "bench",
            "--model", model, "--size", f"{hw[0]}x{hw[1]}",
            "--timesteps", *map(str, steps), "--runs", str(runs), "--warmup", "1", "--no-counting",
            "--threads", str(threads), "--json", str(out),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"resolution_table: bench failed for {model} {hw}: {proc.stderr.strip()}")
        return json.loads(out.read_text())["rows"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed frames per configuration (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--out", type=Path, default=None, help="also write the table here (Markdown)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.threads < 1 or any(not 1 <= t <= 64 for t in args.timesteps):
        print("resolution_table: error: --runs and --threads ≥ 1, --timesteps in 1..64", file=sys.stderr)
        return 2
    steps = sorted(set(args.timesteps))
    lines = [
        f"| model | frame | model input | {' | '.join(f'T={t} ms / GiB' for t in steps)} |",
        f"|---|---|---|{'---|' * len(steps)}",
    ]
    for model in MODELS:
        for hw in SIZES:
            for cap in (0, DEFAULT_MAX_MODEL_PIXELS) if hw[0] * hw[1] > DEFAULT_MAX_MODEL_PIXELS else (0,):
                run_hw = capped_hw(hw, cap)
                rows = {r["timesteps"]: r for r in _bench(model, run_hw, steps, args.runs, args.threads)}
                cells = [f"{rows[t]['median_ms']:.0f} / {rows[t]['peak_rss_mib'] / 1024:.2f}" for t in steps]
                how = (
                    f"{run_hw[1]}×{run_hw[0]} (default cap)" if cap else f"{run_hw[1]}×{run_hw[0]} (own size)"
                )
                line = f"| {model} | {hw[1]}×{hw[0]} | {how} | {' | '.join(cells)} |"
                print(line, flush=True)
                lines.append(line)
    table = "\n".join(lines)
    if args.out is not None:
        command = "tools/resolution_table.py " + " ".join(argv if argv is not None else sys.argv[1:])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            f"# Latency and memory by resolution and T\n\nMade by `.venv/bin/python {command}`: median of "
            f"{args.runs} frames after one warm-up, {args.threads} CPU threads, counting off, peak RSS of "
            f"a fresh process per row (model, weights, frame and activations).\n\n{table}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
