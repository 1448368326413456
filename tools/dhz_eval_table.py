"""Markdown tables from ``evaluate --task dehaze --json`` files: one row per method, PSNR / SSIM.

Usage: ``python tools/dhz_eval_table.py RESULT.json [RESULT.json ...]`` (prints one table per file,
titled by its file name); used for the dehazer's model card.
"""

from __future__ import annotations

import argparse
import json
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/dhz_eval_table.py", description=__doc__)
    p.add_argument("results", nargs="+", type=Path, help="evaluate --json files")
    args = p.parse_args(argv)
    try:
        print("\n\n".join(table(r) for r in args.results))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
