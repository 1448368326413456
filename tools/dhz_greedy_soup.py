"""Greedy soup (Wortsman et al., 2022) of dehaze checkpoints, scored by the trainer's validation loss.

Usage (repository root, venv set up): ``.venv/bin/python tools/dhz_greedy_soup.py CKPT... --out
OUT.safetensors [--data PAIRS] [--split-seed 0]``. The candidates are sorted by
their own validation loss; starting from the best, each next one stays in the soup only if the
uniform average with it validates strictly better. Every score is printed; the chosen soup is
written with ``snn-perception average``'s metadata. Candidates must share the validation split.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from dhz_val_loss import add_split_arguments, run_tool, validation_scorer  # the sibling tool (same folder)

from snn_perception.models import registry
from snn_perception.offline.soup import average_checkpoints, greedy_soup
from snn_perception.runtime.checkpoint import save_checkpoint
from snn_perception.runtime.paths import check_output_file, make_dir
from snn_perception.runtime.weights import resolve


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "weights", nargs="+", help="checkpoint paths or shipped names (runs fine-tuned from the same weights)"
    )
    p.add_argument("--out", required=True, type=Path, help="output .safetensors (never an input)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out (default: refuse)")
    add_split_arguments(p)
    args = p.parse_args()
    if args.out.suffix != ".safetensors":
        raise ValueError(f"--out {args.out}: must end in .safetensors")
    check_output_file(args.out, inputs=[Path(w) for w in args.weights], overwrite=args.overwrite)
    weights = [resolve(w) for w in args.weights]  # a wrong name fails before the images are read
    scorer = validation_scorer(args)

    def score(state: dict, meta: dict) -> float:
        model = registry.build("snntrans_dhz", meta)
        model.load_state_dict(state)
        return scorer(model)["val_loss"]

    soup, best = greedy_soup(weights, score, log=lambda row: print(json.dumps(row), flush=True))
    print(json.dumps({"soup": [str(p) for p in soup], "val_loss": best}))
    if len(soup) == 1:
        print("the best single checkpoint beat every average; nothing written", file=sys.stderr)
        return 0
    state, meta = average_checkpoints(soup)
    meta["average"]["method"] = "greedy (validation loss)"
    meta["command"] = "tools/dhz_greedy_soup.py " + shlex.join(sys.argv[1:])
    make_dir(args.out.parent, "--out", args.out)
    save_checkpoint(args.out, state, meta)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
