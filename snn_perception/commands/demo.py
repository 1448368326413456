"""``snn-perception demo``: the main job end to end on an embedded default input.

Without arguments it renders a ~10 s, 10 Hz synthetic dive from scikit-image's bundled
public-domain photographs (clean frames as ground truth, see
:mod:`snn_perception.offline.underwater_render`), writes it as a rosbag2, replays it through the
models with the default weights (with a short timestep sweep), prints a summary table and leaves
the report in ``--out``. ``--bag B`` replays your bag instead; ``--data D`` first turns a folder of
images (with an optional sibling ``reference/``) into a bag.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from snn_perception.commands import (
    add_device_argument,
    add_examples,
    add_progress_argument,
    check_threads,
    weights_help,
)
from snn_perception.runtime.paths import check_output_dir, make_dir

DEMO_TIMESTEPS = (1, 2, 4, 8)
#: the budget run shown beside the fixed-T runs: the 10 Hz frame period
DEMO_BUDGETS_MS = (100.0,)


EXAMPLES = (
    "snn-perception demo  # the embedded dive: T sweep and a 100 ms budget run, report in demo_out/",
    "snn-perception demo --data my_photos/ --timesteps 1,4 --latency-budget 0 --out my_demo",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES)
    src = parser.add_mutually_exclusive_group()
    src.add_argument(
        "--bag", type=Path, default=None, help="replay this rosbag2 instead of the synthetic dive"
    )
    src.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of images (optional sibling reference/) to turn into a bag and replay",
    )
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    parser.add_argument(
        "--mode",
        choices=("auto", "ros", "offline"),
        default="auto",
        help="auto: the ROS nodes when they are available, else offline (default)",
    )
    parser.add_argument(
        "--timesteps",
        nargs="+",
        default=[",".join(map(str, DEMO_TIMESTEPS))],
        help="timestep sweep, e.g. 1,2,4,8 or 1 2 4 8 (default 1,2,4,8); a single value for one run",
    )
    parser.add_argument(
        "--latency-budget",
        nargs="+",
        default=[",".join(f"{b:g}" for b in DEMO_BUDGETS_MS)],
        metavar="MS",
        help="per-frame latency budget runs after the T sweep, ms (default 100: the 10 Hz frame "
        "period); 0 for none",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="length of the synthetic dive (default 10; not with --bag or --data)",
    )
    parser.add_argument("--weights", default=None, help=weights_help("dehaze", "dehaze weights"))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    add_device_argument(parser, what="where the models run")
    add_progress_argument(parser)


def ros_available() -> tuple[bool, str]:
    """Whether ROS mode can run here, and why not."""
    import importlib.util

    for mod in ("rclpy", "snn_perception.ros", "snn_perception.replay.ros_mode"):
        try:
            if importlib.util.find_spec(mod) is None:
                return False, f"{mod} is not installed"
        except (ImportError, ValueError):
            return False, f"{mod} is not importable"
    try:
        from snn_perception.replay.ros_mode import ros_mode_ready

        return ros_mode_ready()
    except ImportError as exc:
        return False, str(exc)


def _write_dive_bag(path: Path, seconds: float) -> tuple[int, bool]:
    """The synthetic dive as a bag: camera, reference and (with SUIM photographs) class-id masks
    on ``/camera/mask``; returns (frames, whether masks were written)."""
    from snn_perception.offline.underwater_render import DiveConfig, iter_dive
    from snn_perception.replay.bag_io import BagWriter
    from snn_perception.replay.make_bag import DEFAULT_MASK_TOPIC, DEFAULT_REFERENCE_TOPIC, DEFAULT_TOPIC

    cfg = DiveConfig(seconds=seconds)
    start = time.time_ns() // 1_000_000 * 1_000_000
    period = round(1e9 / cfg.rate_hz)
    n, masks = 0, False
    with BagWriter(path, "mcap") as bag:
        for f in iter_dive(cfg):
            stamp = start + f.index * period
            bag.write_image(DEFAULT_TOPIC, f.raw, stamp, "camera")
            bag.write_image(DEFAULT_REFERENCE_TOPIC, f.clean, stamp, "camera")
            if f.mask is not None:  # mono8 class ids: the segmenter's ground truth
                bag.write_image(DEFAULT_MASK_TOPIC, f.mask, stamp, "camera")
                masks = True
            n += 1
    return n, masks


def run(args: argparse.Namespace) -> int:
    from snn_perception.replay.bag_io import BagError

    try:
        return _run(args)
    except (BagError, ValueError) as exc:
        print(f"snn-perception demo: error: {exc}", file=sys.stderr)
        return 2


BAG_FILES = {".mcap", ".db3", ".db3-shm", ".db3-wal"}


def _check_earlier_bag(bag: Path) -> None:
    """An earlier demo's bag may be replaced; refuse if ``bag`` is a file or holds anything else."""
    if not bag.exists():
        return
    if not bag.is_dir():
        raise ValueError(f"{bag} exists and is not a bag folder; choose another --out")
    foreign = [p.name for p in bag.iterdir() if not (p.name == "metadata.yaml" or p.suffix in BAG_FILES)]
    if foreign:
        raise ValueError(
            f"{bag} holds files a demo did not write ({', '.join(sorted(foreign)[:3])}); "
            "choose another --out or move them"
        )


def _remove_earlier_bag(bag: Path) -> None:
    """Remove the bag an earlier demo wrote here; refuse if the folder holds anything else."""
    _check_earlier_bag(bag)
    if bag.exists():
        shutil.rmtree(bag)


def _resolve_mode(requested: str) -> tuple[str, str | None]:
    """(mode, note to print): ``auto`` falls back to offline when ROS mode cannot run here."""
    if requested == "offline":
        return "offline", None
    ok, why = ros_available()
    if requested == "ros" and not ok:
        raise ValueError(f"--mode ros: {why}; use --mode offline")
    if ok:
        return "ros", None
    return "offline", f"==> ROS mode unavailable ({why}); replaying offline (same engine, no ROS)"


def _run(args: argparse.Namespace) -> int:
    from snn_perception.commands.replay import execute, parse_budgets, parse_timesteps
    from snn_perception.replay.bag_io import BagError
    from snn_perception.replay.common import ReplayConfig, ReplayError, check_weights, resolve_topics
    from snn_perception.replay.make_bag import DEFAULT_MASK_TOPIC, check_source, write_bag
    from snn_perception.replay.report import check_report_dir
    from snn_perception.runtime.progress import enabled as progress_enabled

    t0 = time.perf_counter()
    # every input is checked before anything is rendered, written or created
    check_threads(args.threads)
    if args.seconds is not None and (args.bag is not None or args.data is not None):
        given = "--bag" if args.bag is not None else "--data"
        raise ValueError(
            f"--seconds {args.seconds}: sets the synthetic dive's length, which {given} replaces; drop it"
        )
    seconds = 10.0 if args.seconds is None else args.seconds
    if not 0 < seconds <= 600:
        raise ValueError(f"--seconds must be in (0, 600], got {seconds}")
    timesteps = parse_timesteps(",".join(args.timesteps))
    no_budget = [v.strip() for v in args.latency_budget] == ["0"]
    budgets = () if no_budget else parse_budgets(args.latency_budget)
    out: Path = args.out
    check_output_dir(out)
    mode, note = _resolve_mode(args.mode)
    check_weights("dehaze", args.weights)
    plan = None
    if args.bag is not None:
        bag = args.bag
    elif args.data is not None:
        bag = out / "input_bag"
        try:
            plan = check_source(args.data, skip_hint=None)
        except BagError as exc:
            raise BagError(f"--data: {exc}") from None
        _check_earlier_bag(bag)
    else:
        bag = out / "dive_bag"
        _check_earlier_bag(bag)
    config = ReplayConfig(
        bag=bag,
        out=out / "report",
        mode=mode,
        rate=1.0,
        timesteps=timesteps,
        latency_budgets=budgets,
        dehaze_weights=args.weights,
        device=args.device,
        progress=not args.no_progress and progress_enabled(),
        overwrite=True,  # the report of an earlier demo run in the same --out is ours to replace
    )
    if args.bag is not None:
        topics = resolve_topics(config)
        if topics.frames == 0:
            raise ReplayError(f"topic {topics.image!r} in {topics.info.path} holds no messages")
    check_report_dir(config.out, bag, given=out)

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    make_dir(out)
    if args.bag is not None:
        print(f"==> replaying your bag {bag}")
    elif plan is not None:
        _remove_earlier_bag(bag)
        res = write_bag(plan, bag, storage="mcap")
        print(f"==> wrote {bag}: {res.frames} frames, {res.references} references from {args.data}")
        if res.masks:  # a SUIM-layout folder: score the segmenter too
            config = replace(config, mask_topic=DEFAULT_MASK_TOPIC)
    else:
        _remove_earlier_bag(bag)
        n, masks = _write_dive_bag(bag, seconds)
        truth = "clean frames" + (" and SUIM class masks" if masks else "")
        print(f"==> rendered a synthetic dive ({n} frames, 10 Hz, 240×320, {truth} as ground truth) → {bag}")
        if masks:
            config = replace(config, mask_topic=DEFAULT_MASK_TOPIC)
    if note:
        print(note)
    runs = ", ".join(map(str, timesteps)) or "default"
    extra = f"; latency budget {', '.join(f'{b:g}' for b in budgets)} ms" if budgets else ""
    print(f"==> replay ({mode} mode, real-time pacing, T ∈ {{{runs}}}{extra})")
    rc = execute(config)
    print(f"==> done in {time.perf_counter() - t0:.0f} s; open {out / 'report' / 'report.html'}")
    return rc
