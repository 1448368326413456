"""``snn-perception make-bag (DIR | VIDEO) --out BAG``: images or a video → rosbag2 (sqlite3 or MCAP).

A folder with a sibling ``reference/`` folder (or a folder holding ``raw/`` + ``reference/``) also
writes the same-named references on a second topic as ground truth. A folder holding ``images/`` +
``masks/`` (the SUIM layout; or ``--masks DIR``) also writes every image's class-id mask, lossless
``mono8`` with the image's stamp, on a mask topic for the replay's mIoU (``replay --mask-topic``).
Every input is checked before anything is written; an unreadable image is refused
(``--skip-unreadable`` leaves it out instead), as are a missing mask and one of another size.
Bad input: message, exit 2, no bag left behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from snn_perception.commands import add_examples
from snn_perception.replay.make_bag import DEFAULT_MASK_TOPIC, DEFAULT_REFERENCE_TOPIC, DEFAULT_TOPIC

EPILOG = (
    "Folder layouts: DIR/*.png|jpg… are the frames. Ground truth for dehazing: same-named images in "
    "a sibling DIR/../reference/, or DIR holding raw/ + reference/. Ground truth for segmentation "
    "(SUIM layout): DIR holding images/ + masks/ (or an images/ folder with a sibling masks/, or "
    "--masks); every image needs a same-named mask of its size (palette, grey or SUIM colour PNG), "
    f"written as mono8 class ids on {DEFAULT_MASK_TOPIC}, never compressed. mIoU: snn-perception "
    f"replay BAG --mask-topic {DEFAULT_MASK_TOPIC}."
)


EXAMPLES = (
    "snn-perception make-bag dive/raw/ --out dive_bag --rate 10",
    "snn-perception make-bag dive.mp4 --out dive_bag --compressed --format mcap",
    "snn-perception make-bag suim/ --out suim_bag  # images/ + masks/: masks on /camera/mask",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES, EPILOG)
    parser.add_argument(
        "source",
        metavar="DIR|VIDEO",
        help="folder of images (or holding raw/ + reference/, or images/ + masks/), or a video file",
    )
    parser.add_argument("--out", required=True, type=Path, help="new bag folder to write")
    parser.add_argument(
        "--rate", type=float, default=None, help="frame rate of the stamps in Hz (default 10, or the video's)"
    )
    parser.add_argument(
        "--compressed",
        action="store_true",
        help="write sensor_msgs/CompressedImage (JPEG; references PNG; masks stay raw mono8)",
    )
    parser.add_argument("--format", choices=("sqlite3", "mcap"), default="sqlite3", help="storage format")
    parser.add_argument(
        "--topic",
        default=None,
        help=f"image topic (default {DEFAULT_TOPIC}, + /compressed with --compressed)",
    )
    parser.add_argument(
        "--reference-topic",
        default=None,
        help=f"ground-truth topic (default {DEFAULT_REFERENCE_TOPIC}[/compressed])",
    )
    parser.add_argument(
        "--masks",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of class-id masks, one per image with the same name "
        "(default: DIR/masks/ when DIR holds images/ + masks/)",
    )
    parser.add_argument(
        "--mask-topic",
        default=DEFAULT_MASK_TOPIC,
        help=f"class-id mask topic, mono8, never compressed (default {DEFAULT_MASK_TOPIC})",
    )
    parser.add_argument(
        "--skip-unreadable",
        action="store_true",
        help="leave out images that cannot be read (listed; default: refuse them and write nothing)",
    )


def run(args: argparse.Namespace) -> int:
    from snn_perception.replay.bag_io import BagError
    from snn_perception.replay.make_bag import make_bag

    suffix = "/compressed" if args.compressed else ""
    topic = args.topic or DEFAULT_TOPIC + suffix
    ref_topic = args.reference_topic or DEFAULT_REFERENCE_TOPIC + suffix
    try:
        result = make_bag(
            args.source,
            args.out,
            rate_hz=args.rate,
            compressed=args.compressed,
            storage=args.format,
            topic=topic,
            reference_topic=ref_topic,
            skip_unreadable=args.skip_unreadable,
            masks=args.masks,
            mask_topic=args.mask_topic,
        )
    except BagError as exc:
        print(f"snn-perception make-bag: error: {exc}", file=sys.stderr)
        return 2
    for line in result.skipped:
        print(f"skipped {line}", file=sys.stderr)
    topics = ", ".join(f"{t} ({n})" for t, n in result.topics.items())
    left_out = f" ({len(result.skipped)} unreadable images left out)" if result.skipped else ""
    masks = f", {result.masks} masks" if result.masks else ""
    print(
        f"wrote {result.path} ({args.format}): {result.frames} frames, "
        f"{result.references} references{masks}{left_out}; {topics}"
    )
    if result.masks:
        print(f"for mIoU: snn-perception replay {result.path} --mask-topic {args.mask_topic}")
    return 0
