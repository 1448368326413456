"""Peak memory and time of one snnTrans-DHZ training step, with and without --grad-checkpoint.

Usage (repository root, venv set up): ``.venv/bin/python tools/dhz_train_memory.py [--batch 4]
[--size 256] [--timesteps 4] [--threads 2] [--steps 3]``. Each setting runs in a fresh process.
On the CPU the peak is the process's peak resident memory above its level before the step,
measured twice: with glibc's default allocator (what a user sees) and with a fixed mmap
threshold (``MALLOC_MMAP_THRESHOLD_``), where freed large blocks go back to the system, so
the peak follows the memory actually live. On CUDA it is ``torch.cuda.max_memory_allocated``.
Time is the median of ``--steps`` steps after one warm-up step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

WORKER = "--worker"


def positive(text: str) -> int:
    """An integer ≥ 1 (argparse type: anything else is a one-line usage error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer ≥ 1")
    return value


def one_setting(args: argparse.Namespace) -> dict:
    import torch

    from snn_perception.models import registry

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    meta = {"arch": "snntrans_dhz", "variant": "official", "default_timesteps": args.timesteps}
    model = registry.build("snntrans_dhz", meta).to(device).train()
    model.set_grad_checkpointing(args.checkpoint)
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x, args.timesteps).square().mean().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    step()  # warm-up; its peak is the step's peak (later steps reuse the memory)
    if device.type == "cuda":
        peak_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return {"device": device.type, "peak_mib": round(peak_mib), "step_s": round(statistics.median(times), 3)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=positive, default=4)
    p.add_argument("--size", type=positive, default=256, help="square crop side")
    p.add_argument("--timesteps", type=positive, default=4)
    p.add_argument("--threads", type=positive, default=2)
    p.add_argument("--steps", type=positive, default=3, help="timed steps (median) after the warm-up")
    p.add_argument("--checkpoint", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(WORKER, action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.timesteps > 64:
        p.error(f"argument --timesteps: {args.timesteps}: the model runs 1 to 64 timesteps")
    if args.worker:
        print(json.dumps(one_setting(args)))
        return 0
    common = [
        f"--batch={args.batch}",
        f"--size={args.size}",
        f"--timesteps={args.timesteps}",
        f"--threads={args.threads}",
        f"--steps={args.steps}",
        WORKER,
    ]
    rows = []
    for checkpoint in (False, True):
        row: dict = {"grad_checkpoint": checkpoint}
        for allocator, extra in (("default", {}), ("live", {"MALLOC_MMAP_THRESHOLD_": "131072"})):
            cmd = [sys.executable, __file__, *common] + (["--checkpoint"] if checkpoint else [])
            out = subprocess.run(cmd, env={**os.environ, **extra}, capture_output=True, text=True)
            if out.returncode != 0:  # e.g. killed for memory: say which setting, with its last words
                last = (out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1]
                setting = f"grad_checkpoint={checkpoint}, {allocator} allocator"
                print(f"error: the step with {setting} failed: {last}", file=sys.stderr)
                return 1
            result = json.loads(out.stdout.strip().splitlines()[-1])
            row[f"peak_mib_{allocator}"] = result["peak_mib"]
            row.setdefault("step_s", result["step_s"])  # timed with the default allocator
            row["device"] = result["device"]
            if result["device"] == "cuda":
                break  # the allocator setting does not apply
        rows.append(row)
    print(
        f"batch {args.batch}, {args.size}x{args.size}, T={args.timesteps}, {args.threads} threads, "
        f"{os.cpu_count()} CPUs"
    )
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
