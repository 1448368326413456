"""Markdown tables from ``evaluate --task dehaze --json`` files: one row per method, PSNR / SSIM.

Usage: ``python tools/dhz_eval_table.py [--sweep] RESULT.json [RESULT.json ...]`` (prints one table
per file, titled by its file name); used for the dehazer's model card. ``--sweep``: instead, per
weights and grading (rows ``NAME@T`` and ``NAME@T+GRADING``), PSNR and SSIM at each T evaluated and
whether both are non-decreasing in T (the dehazer issue's anytime check).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path


def table(path: Path) -> str:
    doc = json.loads(path.read_text())
    rows = [
        f"**{path.stem}** ({len(doc['images'])} pairs)",
        "",
        "| method | PSNR (dB) | SSIM |",
        "|---|---:|---:|",
    ]
    for name, m in doc["methods"].items():
        rows.append(f"| {name} | {m['mean']['psnr']:.2f} | {m['mean']['ssim']:.4f} |")
    return "\n".join(rows)


def sweep(path: Path) -> str:
    doc = json.loads(path.read_text())
    curves: dict[str, dict[int, dict[str, float]]] = {}
    for name, m in doc["methods"].items():
        hit = re.fullmatch(r"(.+)@T(\d+)(\+\w+)?", name)
        if hit:
            key = hit.group(1) + (hit.group(3) or "")
            curves.setdefault(key, {})[int(hit.group(2))] = m["mean"]
    rows = [
        f"**{path.stem}** ({len(doc['images'])} pairs)",
        "",
        "| weights+grading | PSNR by T | SSIM by T | non-decreasing |",
        "|---|---|---|---|",
    ]
    for key, by_t in curves.items():
        ts = sorted(by_t)
        psnr = [by_t[t]["psnr"] for t in ts]
        ssim = [by_t[t]["ssim"] for t in ts]
        rising = all(b >= a for seq in (psnr, ssim) for a, b in itertools.pairwise(seq))
        label = "/".join(map(str, ts))
        rows.append(
            f"| {key} (T {label}) | {' / '.join(f'{v:.2f}' for v in psnr)} | "
            f"{' / '.join(f'{v:.3f}' for v in ssim)} | {'yes' if rising else '**no**'} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/dhz_eval_table.py", description=__doc__)
    p.add_argument("results", nargs="+", type=Path, help="evaluate --json files")
    p.add_argument("--sweep", action="store_true", help="T sweeps and whether they are non-decreasing")
    args = p.parse_args(argv)
    try:
        print("\n\n".join((sweep if args.sweep else table)(r) for r in args.results))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
