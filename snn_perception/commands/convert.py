"""``snn-perception convert``: turn a trained ANN U-Net into a Spiking-UNet checkpoint."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

from snn_perception.commands import add_device_argument, add_examples, check_threads, unet_size_type
from snn_perception.models.timesteps import MAX_TIMESTEPS, MIN_TIMESTEPS

THRESHOLDS_FORMAT = "comma-separated positive numbers, high to low, e.g. 2,1,0.5,0.25"


def parse_thresholds(text: str) -> tuple[float, ...]:
    from snn_perception.models.multithreshold import validate_thresholds

    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {THRESHOLDS_FORMAT}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected {THRESHOLDS_FORMAT} (finite)")
    try:
        return validate_thresholds(values, "--thresholds")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; expected {THRESHOLDS_FORMAT}") from None


EXAMPLES = (
    "snn-perception convert --weights runs/unet/best.safetensors --data suim/ --out snn.safetensors",
    "snn-perception convert --weights lite/best.safetensors --data suim/ --calib 128 --out snn.safetensors",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES)
    parser.add_argument(
        "--weights", required=True, metavar="ANN", help="ANN checkpoint from 'train unet' (best.safetensors)"
    )
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="DIR",
        help="training folders; calibration images come from their training split",
    )
    parser.add_argument(
        "--norm",
        choices=["layer", "connection"],
        default="connection",
        help="weight normalisation (connection: one scale per concatenated segment)",
    )
    parser.add_argument(
        "--thresholds",
        type=parse_thresholds,
        default=(2.0, 1.0, 0.5, 0.25),
        help="neuron thresholds, high to low, in normalised units (default 2,1,0.5,0.25)",
    )
    parser.add_argument(
        "--membrane-init",
        type=float,
        default=0.5,
        help="initial membrane in units of the lowest threshold: 0 = the paper's neuron, "
        "0.5 = rounding instead of truncation (default; far better at short T)",
    )
    parser.add_argument("--percentile", type=float, default=99.9, help="activation percentile for λ")
    parser.add_argument("--calib", type=int, default=64, metavar="N", help="calibration images")
    parser.add_argument(
        "--size", type=unet_size_type("--size"), help="calibration size S or HxW (default: the ANN's)"
    )
    parser.add_argument("--timesteps", type=int, default=4, help="default T stored in the checkpoint")
    parser.add_argument("--threads", type=int, help="CPU threads")
    add_device_argument(parser, what="where calibration runs")
    parser.add_argument(
        "--out", required=True, type=Path, help="output .safetensors (never the --weights file)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out (default: refuse)"
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from snn_perception.offline.convert import ConvertConfig, convert_checkpoint
    from snn_perception.offline.seg_data import SegDataError
    from snn_perception.runtime.checkpoint import WeightsError, save_checkpoint
    from snn_perception.runtime.paths import check_output_file, make_dir
    from snn_perception.runtime.weights import resolve

    check_threads(args.threads)
    if args.calib < 1:
        print(
            f"snn-perception convert: error: --calib {args.calib}: need at least one calibration image",
            file=sys.stderr,
        )
        return 2
    if not MIN_TIMESTEPS <= args.timesteps <= MAX_TIMESTEPS:
        print(
            f"snn-perception convert: error: --timesteps {args.timesteps}: must be between 1 and 64",
            file=sys.stderr,
        )
        return 2
    if args.out.suffix != ".safetensors":
        print(f"snn-perception convert: error: --out {args.out}: must end in .safetensors", file=sys.stderr)
        return 2
    try:
        cfg = ConvertConfig(
            norm=args.norm,
            percentile=args.percentile,
            thresholds=args.thresholds,
            default_timesteps=args.timesteps,
            membrane_init=args.membrane_init,
        )
        weights = resolve(args.weights)
        # the ANN is never replaced, an earlier result only with --overwrite: checked before calibrating
        check_output_file(args.out, inputs=[weights], overwrite=args.overwrite)
        make_dir(args.out.parent, "--out", args.out)
        if args.threads:
            torch.set_num_threads(args.threads)
        from snn_perception.runtime.engine import resolve_device

        snn, meta = convert_checkpoint(
            weights, args.data, cfg, args.calib, args.size, device=resolve_device(args.device)
        )
    except (WeightsError, SegDataError, ValueError) as exc:
        print(f"snn-perception convert: error: {exc}", file=sys.stderr)
        return 2
    meta["command"] = "snn-perception convert " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    sha = save_checkpoint(args.out, snn.state_dict(), meta)
    scales = meta["conversion"]["scales"]
    print(
        f"converted ({args.norm}-wise, thresholds {list(args.thresholds)}, "
        f"{meta['conversion']['calibration_images']} calibration images); "
        f"λ range {min(scales.values()):.3g}..{max(scales.values()):.3g}"
    )
    print(f"wrote {args.out} (sha256 {sha[:12]})")
    return 0
