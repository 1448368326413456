"""Progress bars only where a person watches them: on a terminal, and never with ``--no-progress``.

A tqdm bar redraws itself with ``\\r``; in a redirected log (CI, ``nohup``, ``| tee``) that is
noise, one line per redraw. The CLI decides once per command (:func:`cli_scope`) and every bar
asks :func:`enabled`. Bars in code that takes no switch are reached through tqdm's own
``TQDM_DISABLE`` variable, which tqdm reads when it is first imported; so the CLI sets it before
the verb's module (and torch, which imports tqdm) loads. Code outside the CLI (the nodes, tests
calling library functions) gets bars exactly when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

#: the command line's decision; None: not decided (outside the CLI), so ask the terminal
_enabled: bool | None = None
#: tqdm's environment switch (tqdm >= 4.66 reads ``TQDM_<param>`` as defaults at import time)
ENV = "TQDM_DISABLE"


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: the current stderr, where tqdm draws) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def enabled() -> bool:
    """Whether a progress bar should be drawn now."""
    return is_terminal() if _enabled is None else _enabled


def bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> Any:
    """A tqdm bar that follows :func:`enabled` (``disable=True`` in ``kwargs`` still hides it)."""
    from tqdm import tqdm

    kwargs["disable"] = bool(kwargs.get("disable")) or not enabled()
    return tqdm(iterable, **kwargs)


@contextlib.contextmanager
def cli_scope(no_progress: bool) -> Iterator[bool]:
    """Decide for one CLI command: bars only on a terminal and without ``--no-progress``.

    Sets ``TQDM_DISABLE`` for the command (its child processes, such as DataLoader workers,
    inherit it) and restores the previous state afterwards, so in-process callers are unaffected.
    Yields the decision.
    """
    global _enabled
    show = not no_progress and is_terminal()
    saved_state, saved_env = _enabled, os.environ.get(ENV)
    _enabled = show
    if not show:
        os.environ[ENV] = "1"  # tqdm turns the value into a bool: any non-empty text disables
    try:
        yield show
    finally:
        _enabled = saved_state
        if saved_env is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = saved_env
