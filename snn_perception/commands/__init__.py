"""Verbs of the ``snn-perception`` command line, one module each."""

from __future__ import annotations


def check_threads(threads: int | None) -> None:
    """``--threads`` is at least 1 (0 or less would be ignored or crash torch); None: torch's choice."""
    if threads is not None and threads < 1:
        raise ValueError(f"--threads {threads}: must be at least 1 (omit it for torch's choice)")
