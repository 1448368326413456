"""``snn-perception <verb>``: one entry point for every user-facing tool.

Each verb lives in its own module under :mod:`snn_perception.commands` exposing
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when
their verb runs, so ``--help`` stays fast and the ROS-free verbs never load rclpy. For every
verb, warnings are one line ``snn-perception VERB: warning: ...`` (:mod:`snn_perception.runtime.notices`)
and progress bars are drawn only on a terminal (:mod:`snn_perception.runtime.progress`).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Sequence

from snn_perception import __version__

#: verb → (module under snn_perception.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {}


def _register_known() -> None:
    """Verbs whose module exists in this install (later features add theirs here)."""
    known = {
        "enhance": ("enhance", "dehaze images or folders with snnTrans-DHZ"),
        "segment": ("segment", "segment images or folders with the Spiking-UNet"),
        "bench": ("bench", "measure latency, memory and energy of a model"),
        "train": ("train", "train a model (dhz or unet)"),
        "convert": ("convert", "convert a trained ANN U-Net into a Spiking-UNet"),
        "finetune": ("finetune", "fine-tune a converted Spiking-UNet on spiking flow"),
        "evaluate": ("evaluate", "evaluate a model on a folder of pairs"),
        "average": ("average", "average the weights of checkpoints of one network (a model soup)"),
        "bringup": ("bringup", "run the perception nodes in one process"),
        "make-bag": ("make_bag", "write a rosbag2 of images from a folder or video"),
        "replay": ("replay", "replay a rosbag through the models and write a report"),
        "demo": ("demo", "run the synthetic-dive demo end to end"),
    }
    for verb, (module, help_text) in known.items():
        if importlib.util.find_spec(f"snn_perception.commands.{module}") is not None:
            COMMANDS[verb] = (module, help_text)


def build_parser() -> argparse.ArgumentParser:
    _register_known()
    parser = argparse.ArgumentParser(
        prog="snn-perception",
        description="Spiking neural network perception for underwater robots.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, (_module, help_text) in sorted(COMMANDS.items()):
        sub.add_parser(verb, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)  # handles --help, --version and unknown verbs
        parser.print_help()
        return 0 if args.verb is None and not argv else 2
    verb, rest = argv[0], argv[1:]
    from snn_perception.runtime.notices import cli_messages
    from snn_perception.runtime.progress import cli_scope

    # decided before the verb's module loads: tqdm (imported by torch) reads its switch on import,
    # which reaches the bars of code that takes no --no-progress of its own
    with cli_scope("--no-progress" in rest), cli_messages(f"snn-perception {verb}"):
        return _run_verb(verb, rest)


def _run_verb(verb: str, rest: list[str]) -> int:
    """Parse and run one verb; bad input its code did not catch becomes one line and exit code 2."""
    module = importlib.import_module(f"snn_perception.commands.{COMMANDS[verb][0]}")
    sub = argparse.ArgumentParser(
        prog=f"snn-perception {verb}", description=COMMANDS[verb][1], formatter_class=_HelpWithDefaults
    )
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    try:
        code = int(module.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at interpreter exit
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `snn-perception segment … | head`: the reader has what it wanted; end quietly, as Unix
        # tools do (exit status 128 + SIGPIPE), with stdout pointed away so nothing flushes into it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, OSError, MemoryError) as exc:
        # the safety net for bad input a verb did not catch itself: one line and exit code 2,
        # the traceback only on request (bugs of other kinds still raise)
        if os.environ.get("SNN_PERCEPTION_DEBUG"):
            raise
        print(f"snn-perception {verb}: error: {_describe(exc)}", file=sys.stderr)
        return 2


class _HelpWithDefaults(argparse.RawDescriptionHelpFormatter):
    """Adds '(default: X)' to an option's help unless the text already says its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            re.search(r"\(default|default:|default \d", text.lower())
            or not action.option_strings
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or default == []
        ):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {shown})"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, MemoryError) or "can't allocate memory" in str(exc):
        return f"out of memory ({exc}); use a smaller --size or fewer images at once"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
