"""Verbs of the ``snn-perception`` command line, one module each."""

from __future__ import annotations

import argparse

from snn_perception.models.timesteps import MAX_TIMESTEPS, MIN_TIMESTEPS


def check_threads(threads: int | None) -> None:
    """``--threads`` is at least 1 (0 or less would be ignored or crash torch); None: torch's choice."""
    if threads is not None and threads < 1:
        raise ValueError(f"--threads {threads}: must be at least 1 (omit it for torch's choice)")


def timestep_list(text: str) -> list[int]:
    """argparse type: ``"1,2,4"`` or ``"1 2 4"`` → ``[1, 2, 4]``, each in 1..64 (with ``nargs="+"``
    every word is one list: :func:`joined` makes them one)."""
    items = [item.split() for item in text.split(",")]
    if any(not item for item in items):
        raise argparse.ArgumentTypeError(
            f"--timesteps {text!r}: empty item; expected integers separated by commas, e.g. 1,2,4,8"
        )
    try:
        values = [int(v) for item in items for v in item]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timesteps {text!r}: expected integers, e.g. 1,2,4,8") from None
    bad = [v for v in values if not MIN_TIMESTEPS <= v <= MAX_TIMESTEPS]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"--timesteps {text!r}: each value must be between 1 and 64")
    return values


def joined(groups: list[list[int]]) -> list[int]:
    """``[[1, 2], [4]]`` (``--timesteps 1,2 4``) → ``[1, 2, 4]``."""
    return [t for group in groups for t in group]


def size_type(flag: str, minimum: int = 1, multiple: int = 1):
    """argparse type for ``--size``/``--crop``: ``N`` or ``HxW`` (the shared parser of
    :func:`runtime.preprocess.parse_hw`), each side at least ``minimum`` and a multiple of ``multiple``.

    One factory so every verb accepts the same forms and words its refusal the same way.
    """

    def parse(text: str) -> tuple[int, int]:
        from snn_perception.runtime.preprocess import parse_hw

        try:
            hw = parse_hw(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: {exc}; expected HxW or N (for NxN)") from None
        if min(hw) < minimum or any(v % multiple for v in hw):
            rule = f"at least {minimum}"
            if multiple > 1:
                rule = f"multiples of {multiple} and {rule}"
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: both sides must be {rule}")
        return hw

    parse.__name__ = "size"  # argparse names the type in its own messages
    return parse


def unet_size_type(flag: str):
    """Sizes for the U-Nets, which pool four times: sides multiples of 16."""
    return size_type(flag, minimum=16, multiple=16)


def add_examples(parser: argparse.ArgumentParser, examples: tuple[str, ...], note: str = "") -> None:
    """An ``examples:`` block at the end of ``--help`` (after ``note``), kept verbatim. The lines are
    also kept on the parser (``parser.examples``): a test parses each one with this very parser, so
    an example that no longer matches the options fails CI instead of misleading a reader."""
    block = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    parser.epilog = f"{note}\n\n{block}" if note else block
    parser.examples = examples  # type: ignore[attr-defined]


def weights_help(task: str, what: str = "weights") -> str:
    """``--weights`` help naming the default and the shipped choices for ``task``."""
    from snn_perception.runtime.weights import DEFAULTS, EXTERNAL, shipped_for

    shipped = shipped_for(task)
    external = [name for name in DEFAULTS[task] if name in EXTERNAL]
    extra = f"; {', '.join(external)} when SNN_WEIGHTS_DIR or ../shared/weights holds it" if external else ""
    return (
        f"{what}: a shipped name or a file path (default: {DEFAULTS[task][0]}; shipped: "
        f"{', '.join(shipped) or 'none'}{extra})"
    )


#: the one ``--device`` choice list of every verb
DEVICES = ("cpu", "cuda", "auto")


def add_device_argument(parser: argparse.ArgumentParser, default: str | None = "cpu", what: str = "") -> None:
    """``--device cpu|cuda|auto``, the same choices and fallback wording on every verb."""
    where = f"{what}: " if what else ""
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default=default,
        help=f"{where}cpu, cuda or auto (auto: cuda when a GPU is present); cuda without a GPU "
        "warns once and runs on the CPU",
    )


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: the bars are drawn only on a terminal anyway; this hides them there too."""
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (they are shown only when stderr is a terminal, never in logs)",
    )
