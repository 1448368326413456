"""The warm CLI runner the input tests use gives what a fresh ``python -m snn_perception.cli`` gives.

Every check below runs a command both ways and asks for the same exit code, messages and files, so a
difference the fork could introduce (environment, working folder, import-time state, exit path)
fails here rather than hiding in the hundreds of tests that rely on :func:`cli_run.cli`.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import _Server, cli, cold_cli, snapshot
from warm_cli_server import POLL_ENV


def _both(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    return cli(*args, cwd=cwd), cold_cli(*args, cwd=cwd)


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["no-such-verb"],
        ["enhance", "--device", "gpu"],
        ["train", "dhz", "--epochs", "0"],
        ["enhance", "missing.png", "--out", "o"],
        ["segment", "a.png", "--weights", "nowhere.safetensors", "--out", "o"],
    ],
    ids=["version", "unknown-verb", "bad-choice", "bad-number", "missing-input", "missing-weights"],
)
def test_warm_and_fresh_runs_answer_alike(tmp_path: Path, argv: list[str]) -> None:
    assert cv2.imwrite(str(tmp_path / "a.png"), np.full((16, 16, 3), 90, np.uint8))
    warm, fresh = _both(*argv, cwd=tmp_path)
    assert (warm.returncode, warm.stdout, warm.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert warm.returncode in (0, 2), warm.stderr  # each case is an answer, not a crash


def test_a_warm_run_writes_the_same_files_in_its_own_folder(tmp_path: Path) -> None:
    for name in ("warm", "fresh"):
        (tmp_path / name).mkdir()
        rng = np.random.default_rng(0)
        assert cv2.imwrite(str(tmp_path / name / "a.png"), rng.integers(0, 255, (24, 24, 3), np.uint8))
    argv = ["enhance", "a.png", "--out", "o", "--size", "16", "--timesteps", "1", "--threads", "1"]
    warm = cli(*argv, cwd=tmp_path / "warm")
    fresh = cold_cli(*argv, cwd=tmp_path / "fresh")
    assert warm.returncode == fresh.returncode == 0, (warm.stderr, fresh.stderr)
    assert warm.stderr == fresh.stderr
    files = {name: snapshot(tmp_path / name) for name in ("warm", "fresh")}
    assert [p.relative_to(tmp_path / "warm") for p in files["warm"]] == [
        p.relative_to(tmp_path / "fresh") for p in files["fresh"]
    ]
    assert list(files["warm"].values()) == list(files["fresh"].values())


def test_the_environment_of_the_moment_reaches_the_command(tmp_path: Path, monkeypatch) -> None:
    # read when the command first counts spikes, so a warm run must see the value set now
    monkeypatch.setenv("SNN_EVENT_KERNELS", "bogus")
    assert cv2.imwrite(str(tmp_path / "x.png"), np.full((16, 16, 3), 90, np.uint8))
    argv = ["enhance", "x.png", "--size", "16", "--timesteps", "1", "--threads", "1"]
    warm, fresh = cli(*argv, "--out", "w", cwd=tmp_path), cold_cli(*argv, "--out", "f", cwd=tmp_path)
    assert warm.returncode == fresh.returncode == 0
    assert "SNN_EVENT_KERNELS='bogus'" in warm.stderr and warm.stderr == fresh.stderr


def test_a_command_past_its_time_is_killed_and_the_next_one_runs(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        cli("bench", "--size", "64", "--timesteps", "8", "--runs", "1000", cwd=tmp_path, timeout=2)
    assert time.monotonic() - start < 30
    assert cli("--version", cwd=tmp_path).returncode == 0


def test_a_server_without_pidfd_waits_by_polling(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(POLL_ENV, "1")
    server = _Server()  # started with the switch in its environment
    try:
        assert server.run(["enhance", "--device", "gpu"], tmp_path, 60).returncode == 2
        with pytest.raises(subprocess.TimeoutExpired):
            server.run(["bench", "--size", "64", "--timesteps", "8", "--runs", "1000"], tmp_path, 2)
    finally:
        server.close()


def test_side_by_side_commands_each_get_their_own_process(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        procs = list(pool.map(lambda _: cli("--version", cwd=tmp_path), range(4)))
    assert {p.returncode for p in procs} == {0} and len({p.stdout for p in procs}) == 1
