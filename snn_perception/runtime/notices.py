"""Warnings for people: one plain line, said once, in the CLI's ``snn-perception VERB: warning:`` form.

Library code logs through the ``snn_perception`` loggers (``warn_once`` for things that would
otherwise repeat, such as a missing GPU found by every model load). The CLI installs
:func:`cli_messages` for the length of one command, which prints each such record as
``snn-perception VERB: warning: ...`` on stderr; elsewhere (the nodes, library users) the record
goes wherever logging is configured, by default Python's plain one-line stderr output. A Python
``UserWarning`` would print a file path, a line number and a source line instead.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator

#: the parent of every logger in the package (``logging.getLogger(__name__)`` in its modules)
LOGGER = "snn_perception"

_seen: set[str] = set()
_seen_lock = threading.Lock()


def warn_once(logger: logging.Logger, key: str, message: str) -> None:
    """Log ``message`` as a warning the first time ``key`` is seen (per CLI command, else per process)."""
    with _seen_lock:
        if key in _seen:
            return
        _seen.add(key)
    logger.warning(message)


class _CliHandler(logging.Handler):
    """``PROG: warning: message`` on the stderr of the moment (tests and pipes replace it)."""

    def __init__(self, prog: str) -> None:
        super().__init__(logging.WARNING)
        self.prog = prog

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = " ".join(record.getMessage().split())  # one line, whatever the message holds
            print(f"{self.prog}: {record.levelname.lower()}: {text}", file=sys.stderr, flush=True)
        except Exception:  # pragma: no cover - logging must never break the command
            self.handleError(record)


@contextlib.contextmanager
def cli_messages(prog: str) -> Iterator[None]:
    """Print the package's warnings as ``PROG: warning: ...`` while one command runs."""
    logger = logging.getLogger(LOGGER)
    handler = _CliHandler(prog)
    with _seen_lock:
        _seen.clear()  # "once" means once per command
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
