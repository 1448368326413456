"""Running the real CLI in a subprocess and checking its refusals: shared by the CLI input tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def cli(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m snn_perception.cli ARGS`` in ``cwd``, the way a user meets it."""
    return subprocess.run(
        [sys.executable, "-m", "snn_perception.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snapshot(root: Path) -> dict[Path, bytes]:
    """Every file under ``root`` with its bytes: equal before and after means nothing was touched."""
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def refused(proc: subprocess.CompletedProcess, *words: str, one_line: bool = False) -> None:
    """Exit code 2 and an error holding ``words``, without a traceback (``one_line``: and nothing else)."""
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], err)
    assert "Traceback" not in err, err
    if one_line:
        assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    for word in words:
        assert word in err, (word, err)
