"""The developer tools in tools/ refuse bad input in one line (exit 2) and write nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["dhz_val_loss.py", "nope.safetensors"], ["error:", "nope.safetensors"]),
        (["dhz_greedy_soup.py", "a.safetensors", "b.safetensors", "--out", "a.safetensors"],
         ["error:", "also an input"]),
        (["dhz_greedy_soup.py", "a.safetensors", "--out", "soup.pt"], ["error:", "must end in .safetensors"]),
        (["dhz_val_loss.py", "dhz", "--threads", "0"], ["error:", "--threads 0", "at least 1"]),
        (["dhz_val_loss.py", "dhz", "--val-fraction", "0"], ["error:", "--val-fraction 0.0", "above 0"]),
        (["dhz_greedy_soup.py", "dhz", "nope", "--out", "new/soup.safetensors"], ["error:", "nope"]),
        (["dhz_greedy_soup.py", "dhz", "dhz", "--out", "new/soup.safetensors", "--threads", "0"],
         ["error:", "--threads 0"]),
        (["dhz_train_memory.py", "--batch", "0"], ["--batch", "integer ≥ 1"]),
        (["dhz_train_memory.py", "--timesteps", "65"], ["--timesteps", "1 to 64"]),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, argv: list[str], words: list[str]) -> None:
    proc = subprocess.run([sys.executable, str(TOOLS / argv[0]), *argv[1:]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    assert list(tmp_path.iterdir()) == []
