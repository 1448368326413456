"""``make test``'s own input: PYTEST_WORKERS is checked before the minutes of set-up, with a message."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def _check(value: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", "-C", str(REPO), "check-workers", f"PYTEST_WORKERS={value}"],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("value", ["two", "-1", "2.5", "", "auto; rm -rf x"])
def test_a_bad_worker_count_is_refused_saying_what_is_accepted(value: str) -> None:
    res = _check(value)
    assert res.returncode != 0
    assert (
        f"PYTEST_WORKERS={value}: give a number of test processes (0 runs one process), auto or logical"
        in (res.stdout + res.stderr)
    )


@pytest.mark.parametrize("value", ["0", "2", "16", "auto", "logical"])
def test_worker_counts_pytest_xdist_takes_pass(value: str) -> None:
    res = _check(value)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout == ""


def test_make_test_checks_the_count_before_the_set_up() -> None:
    res = subprocess.run(
        # -n prints the recipes without running them; -W setup.cfg makes the set-up look due, as after a pull
        ["make", "-n", "-W", "setup.cfg", "-C", str(REPO), "test", "PYTEST_WORKERS=two"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = res.stdout.splitlines()
    check = next(i for i, line in enumerate(lines) if "PYTEST_WORKERS=two" in line)
    setup = [i for i, line in enumerate(lines) if "pip" in line or "colcon build" in line or "pytest" in line]
    assert setup and all(i > check for i in setup), res.stdout
