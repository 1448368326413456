"""``snn-perception replay BAG``: replay a recorded dive through the models and write a report.

``--mode offline`` runs the runtime engine on the decoded frames (no ROS; pacing simulated);
``--mode ros`` (default) plays the bag into the real lifecycle nodes. Both write the same
report (``report.json``, ``frames.csv``, plots, contact sheet, ``report.html``) under ``--out``.
Ctrl-C writes a partial report. Bad input: one-line message, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from snn_perception.commands import (
    add_device_argument,
    add_examples,
    add_progress_argument,
    check_threads,
    timestep_list,
    weights_help,
)
from snn_perception.runtime.memory import DEFAULT_MAX_MODEL_PIXELS
from snn_perception.runtime.progress import enabled as progress_enabled

EXAMPLES = (
    "snn-perception replay dive_bag --timesteps 1,2,4,8 --out replay_out",
    "snn-perception replay dive_bag --latency-budget 80 120 --out replay_budget",
    "snn-perception replay suim_bag --mode offline --mask-topic /camera/mask --out replay_suim",
    "snn-perception replay dive_bag --mode offline --as-fast-as-possible --out replay_offline",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES)
    parser.add_argument("bag", type=Path, metavar="BAG", help="rosbag2 folder (sqlite3 or MCAP)")
    parser.add_argument(
        "--topic", default=None, help="camera image topic (default: the bag's one image topic)"
    )
    parser.add_argument(
        "--reference-topic",
        default=None,
        help="ground-truth image topic (default: the bag's '*reference*' topic; 'none' to ignore)",
    )
    parser.add_argument("--mask-topic", default=None, help="ground-truth class-id masks (mono8) for mIoU")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--rate", type=float, default=1.0, help="playback speed factor (default 1.0 = real time)"
    )
    pace.add_argument(
        "--as-fast-as-possible", action="store_true", help="no pacing: every frame is processed"
    )
    parser.add_argument(
        "--clock",
        action="store_true",
        help="ros mode: publish /clock with the bag's time and keep the frames' bag stamps "
        "(in-process nodes use sim time), like 'ros2 bag play --clock'",
    )
    parser.add_argument(
        "--timesteps",
        nargs="+",
        default=None,
        help="T, or a sweep such as 1,2,4,8 or 1 2 4 8 (default: the weights')",
    )
    parser.add_argument(
        "--latency-budget",
        nargs="+",
        default=None,
        metavar="MS",
        help="after the --timesteps runs, one run per per-frame latency budget (ms, arrival to "
        "result): the models pick T per frame within it, e.g. 100 or 80,120 (default: none)",
    )
    parser.add_argument(
        "--mode",
        choices=("ros", "offline"),
        default="ros",
        help="ros: the real nodes (default); offline: the engine directly, no ROS",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("replay_out"), help="report folder (default replay_out)"
    )
    parser.add_argument("--weights", default=None, help=weights_help("dehaze", "dehaze weights"))
    parser.add_argument(
        "--segment-weights",
        default=None,
        help=weights_help("segment", "segmentation weights"),
    )
    parser.add_argument("--no-dehaze", action="store_true", help="do not run the dehazer")
    parser.add_argument("--no-segment", action="store_true", help="do not run the segmenter")
    parser.add_argument("--size", default=None, help="run the models at HxW (outputs keep the input size)")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_MODEL_PIXELS,
        metavar="N",
        help="larger frames run the models at the largest size of their aspect ratio with at most N "
        f"pixels, as the nodes' max_model_pixels (default {DEFAULT_MAX_MODEL_PIXELS}: 640x480); "
        "0 = every frame at its own size; --size wins",
    )
    parser.add_argument(
        "--no-count-ops", action="store_true", help="skip SOP/energy counting (slightly faster)"
    )
    parser.add_argument("--samples", type=int, default=4, help="frames in the contact sheet (default 4)")
    add_device_argument(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    add_progress_argument(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier replay's report and recordings in --out (default: refuse)",
    )
    parser.add_argument(
        "--dehaze-node",
        default=None,
        help="ros mode: replay into this already running dehaze node (fully qualified name, e.g. "
        "/rov/dehaze_node from ros2 launch) instead of starting the nodes in-process; the frames go "
        "to the topic it reads",
    )
    parser.add_argument(
        "--segment-node",
        default=None,
        help="ros mode: an already running segment node (one that reads --dehaze-node's output is fed "
        "through it)",
    )


def parse_budgets(values: list[str] | None) -> tuple[float, ...]:
    """``--latency-budget`` values (commas, spaces or both) → milliseconds, each once."""
    if not values:
        return ()
    out: list[float] = []
    for part in ",".join(values).replace(",", " ").split():
        try:
            ms = float(part)
        except ValueError:
            raise ValueError(
                f"--latency-budget {part!r}: expected milliseconds, e.g. 100 or 80,120"
            ) from None
        if not (0 < ms <= 10_000):
            raise ValueError(f"--latency-budget {part}: must be in (0, 10000] milliseconds")
        if ms in out:
            raise ValueError(f"--latency-budget {part} is given twice; give each value once")
        out.append(ms)
    return tuple(out)


def parse_timesteps(text: str | None) -> tuple[int, ...]:
    """A sweep's T values (the shared :func:`~snn_perception.commands.timestep_list` rule), each once."""
    if not text:
        return ()
    try:
        values = timestep_list(text)
    except argparse.ArgumentTypeError as exc:  # reported as the verb's one-line error, not a usage dump
        raise ValueError(str(exc)) from None
    for i, t in enumerate(values):
        if t in values[:i]:  # a sweep runs each T once: a repeat is a typo, not a request
            raise ValueError(f"--timesteps {text}: T={t} is given twice; give each value once (e.g. 1,2,4,8)")
    return tuple(values)


def build_config(args: argparse.Namespace):
    from snn_perception.replay.common import ReplayConfig
    from snn_perception.runtime.preprocess import parse_hw

    ref = args.reference_topic
    if ref is not None and ref.lower() == "none":
        ref = ""
    if args.samples < 0:
        raise ValueError(f"--samples must be ≥ 0, got {args.samples}")
    if args.max_pixels < 0:
        raise ValueError(f"--max-pixels {args.max_pixels}: must be 0 (every frame at its own size) or more")
    check_threads(args.threads)
    if args.no_dehaze and args.no_segment:
        raise ValueError("--no-dehaze and --no-segment together leave no model to run; drop one of them")
    return ReplayConfig(
        bag=args.bag,
        out=args.out,
        mode=args.mode,
        topic=args.topic,
        reference_topic=ref,
        mask_topic=args.mask_topic,
        rate=None if args.as_fast_as_possible else args.rate,
        clock=args.clock,
        timesteps=parse_timesteps(",".join(args.timesteps) if args.timesteps else None),
        latency_budgets=parse_budgets(args.latency_budget),
        dehaze_weights=args.weights,
        segment_weights=args.segment_weights,
        run_dehaze=not args.no_dehaze,
        run_segment=not args.no_segment,
        count_ops=not args.no_count_ops,
        device=args.device,
        input_hw=parse_hw(args.size) if args.size else None,
        max_model_pixels=args.max_pixels,
        samples=args.samples,
        progress=not args.no_progress and progress_enabled(),
        overwrite=args.overwrite,
    )


def execute(config, out_stream=sys.stdout, external: dict[str, str] | None = None) -> int:
    """Run a replay and write its report; 0, or 130 after Ctrl-C (partial report written)."""
    from snn_perception.replay.report import check_report_dir, replacing_previous_report, write_report
    from snn_perception.replay.summary import format_table, recommendation, summary_table

    check_report_dir(config.out, config.bag)
    with replacing_previous_report(config.out, config.overwrite):  # put back if this run fails
        if config.mode == "ros":
            from snn_perception.replay.ros_mode import run_ros

            result = run_ros(config, nodes="external" if external else "inprocess", external=external)
        else:
            from snn_perception.replay.offline import run_offline

            result = run_offline(config)
        files = write_report(result, config.out)
    for note in result.notes:
        print(f"note: {note}", file=out_stream)
    print(format_table(summary_table(files.summaries)), file=out_stream)
    advice = recommendation(files.summaries)
    if advice:
        print(advice, file=out_stream)
    state = "PARTIAL report (interrupted)" if result.interrupted else "report"
    print(f"{state}: {files.html}", file=out_stream)
    return 130 if result.interrupted else 0


def run(args: argparse.Namespace) -> int:
    from snn_perception.replay.bag_io import BagError

    try:
        config = build_config(args)  # every argument checked first (--threads ≥ 1 among them)
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        external = {
            task: name
            for task, name in (("dehaze", args.dehaze_node), ("segment", args.segment_node))
            if name is not None
        }
        if external and config.mode != "ros":
            raise ValueError("--dehaze-node/--segment-node need --mode ros")
        return execute(config, external=external or None)
    except (BagError, ValueError) as exc:
        print(f"snn-perception replay: error: {exc}", file=sys.stderr)
        return 2
