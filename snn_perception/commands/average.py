"""``snn-perception average``: a uniform weight average ("model soup") of checkpoints."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from snn_perception.commands import add_examples

EXAMPLES = (
    "snn-perception average --weights runs/a/best.safetensors runs/b/best.safetensors --out soup.safetensors",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES)
    parser.add_argument(
        "--weights",
        nargs="+",
        required=True,
        metavar="NAME|PATH",
        help="two or more checkpoints of one network (e.g. runs fine-tuned from the same "
        "weights); score the result on your validation split before using it",
    )
    parser.add_argument("--out", required=True, type=Path, help="output .safetensors (never an input)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out (default: refuse)"
    )


def run(args: argparse.Namespace) -> int:
    from snn_perception.offline.soup import average_checkpoints
    from snn_perception.runtime.checkpoint import WeightsError, save_checkpoint
    from snn_perception.runtime.paths import check_output_file, make_dir
    from snn_perception.runtime.weights import resolve

    if args.out.suffix != ".safetensors":
        print(f"snn-perception average: error: --out {args.out}: must end in .safetensors", file=sys.stderr)
        return 2
    try:
        paths = [resolve(w) for w in args.weights]
        check_output_file(args.out, inputs=paths, overwrite=args.overwrite)
        state, meta = average_checkpoints(paths)
        make_dir(args.out.parent, "--out", args.out)  # only once the average exists
    except (WeightsError, ValueError) as exc:
        print(f"snn-perception average: error: {exc}", file=sys.stderr)
        return 2
    for note in meta["average"]["notes"]:
        print(f"note: {note}; validate the average on images none of the runs trained on", file=sys.stderr)
    meta["command"] = "snn-perception average " + shlex.join(sys.argv[2:])
    sha = save_checkpoint(args.out, state, meta)
    print(f"wrote {args.out}: the mean of {len(paths)} checkpoints (sha256 {sha[:12]})")
    return 0
