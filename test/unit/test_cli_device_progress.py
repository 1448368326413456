"""``--device cuda`` without a GPU, progress bars and the energy unit, as a person meets them.

Every verb with ``--device`` takes the same choices; where no GPU exists ``--device cuda`` prints
one plain line ``snn-perception VERB: warning: CUDA is not available; running on the CPU`` (not a
Python ``UserWarning``) and the verb still does its work. Progress bars appear only on a terminal:
with output redirected to a pipe no ``\\r`` redraws reach the log, and ``--no-progress`` hides them
on a terminal too. Energy is shown in mJ. Each verb runs for real in a subprocess on tiny data.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_run import cli, cold_cli

from snn_perception.runtime import progress

pytest.importorskip("snn_perception.models.dhz", reason="the snnTrans-DHZ model is not available")

WARNING = "warning: CUDA is not available; running on the CPU"
UNET = ["--width", "4", "--classes", "3", "--size", "32", "--crop", "32", "--batch", "2", "--threads", "1"]
#: verb (as the warning names it) → its command line; those in :data:`SEGMENT_CHAIN` run in that
#: order (each uses the one before's output), the others need nothing but the data
RUNS: dict[str, list[str]] = {
    "train unet": ["train", "unet", "--data", "seg", *UNET, "--epochs", "1", "--out", "unet"],
    "train dhz": [
        "train",
        "dhz",
        "--data",
        "dh",
        "--crop",
        "32",
        "--resize",
        "32",
        "--timesteps",
        "1",
        "--batch",
        "2",
        "--val-size",
        "32",
        "--threads",
        "1",
        "--epochs",
        "1",
        "--out",
        "dhz",
    ],
    "convert": [
        "convert",
        "--weights",
        "unet/best.safetensors",
        "--data",
        "seg",
        "--calib",
        "2",
        "--threads",
        "1",
        "--out",
        "snn.safetensors",
    ],
    "finetune": [
        "finetune",
        "--weights",
        "snn.safetensors",
        "--data",
        "seg",
        "--epochs",
        "1",
        "--batch",
        "2",
        "--threads",
        "1",
        "--out",
        "ft.safetensors",
    ],
    "segment": [
        "segment",
        "seg/images",
        "--weights",
        "ft.safetensors",
        "--out",
        "segout",
        "--threads",
        "1",
        "--json",
        "seg.json",
    ],
    "evaluate": [
        "evaluate",
        "--task",
        "segment",
        "--data",
        "seg",
        "--weights",
        "ft.safetensors",
        "--threads",
        "1",
    ],
    "enhance": [
        "enhance",
        "dh/raw",
        "--out",
        "enh",
        "--size",
        "16",
        "--timesteps",
        "1",
        "--threads",
        "1",
        "--json",
        "enh.json",
    ],
    "bench": [
        "bench",
        "--size",
        "16",
        "--timesteps",
        "1",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--json",
        "bench.json",
    ],
    "demo": "demo --data dh/raw --mode offline --timesteps 1 --latency-budget 0 --threads 1 --out d".split(),
}

SEGMENT_CHAIN = ["train unet", "convert", "finetune", "segment", "evaluate"]


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    assert cv2.imwrite(str(path), np.clip(rng.normal(value, 30, (32, 32, 3)), 0, 255).astype(np.uint8))


def _data(root: Path) -> Path:
    """dh/ (raw + reference pairs) and seg/ (SUIM layout: images + masks, 3 classes), 4 of each."""
    for i in range(4):
        _image(root / "dh" / "raw" / f"{i}.png", 70 + i)
        _image(root / "dh" / "reference" / f"{i}.png", 120 + i)
        _image(root / "seg" / "images" / f"{i}.png", 100 + i)
        mask = np.zeros((32, 32), np.uint8)
        mask[:, 16:] = 1 + i % 2
        (root / "seg" / "masks").mkdir(exist_ok=True)
        assert cv2.imwrite(str(root / "seg" / "masks" / f"{i}.png"), mask)
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, subprocess.CompletedProcess]]:
    """Every verb run once with ``--device cuda`` and its output captured through pipes."""
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: --device cuda does not fall back here")
    root = _data(tmp_path_factory.mktemp("device"))

    def lane(names: list[str]) -> dict[str, subprocess.CompletedProcess]:
        # fresh interpreters: tqdm reads its switch when first imported, which a warm run has done
        return {name: cold_cli(*RUNS[name], "--device", "cuda", cwd=root, timeout=300) for name in names}

    # two lanes side by side (each verb runs on 1 thread): the U-Net chain, and the rest
    with ThreadPoolExecutor(2) as pool:
        lanes = [
            pool.submit(lane, names) for names in (SEGMENT_CHAIN, [n for n in RUNS if n not in SEGMENT_CHAIN])
        ]
        done = {name: proc for future in lanes for name, proc in future.result().items()}
    for name, proc in done.items():
        assert proc.returncode == 0, (name, proc.stdout[-2000:], proc.stderr[-2000:])
    return root, done


@pytest.mark.parametrize("name", list(RUNS))
def test_device_cuda_without_a_gpu_warns_once_in_one_line_and_runs(runs, name: str) -> None:
    _, done = runs
    err = done[name].stderr
    said = [line for line in err.splitlines() if "CUDA" in line or "warn" in line.lower()]
    assert said == [f"snn-perception {name.split()[0]}: {WARNING}"], err
    assert "UserWarning" not in err and "Traceback" not in err


@pytest.mark.parametrize("name", list(RUNS))
def test_no_progress_redraws_reach_a_pipe(runs, name: str) -> None:
    _, done = runs
    assert "\r" not in done[name].stdout and "\r" not in done[name].stderr


def test_every_device_option_is_one_choice_list() -> None:
    for verb in (
        ["enhance"],
        ["segment"],
        ["bench"],
        ["replay"],
        ["evaluate"],
        ["convert"],
        ["finetune"],
        ["train", "unet"],
        ["train", "dhz"],
        ["demo"],
    ):
        proc = cli(*verb, "--device", "gpu", cwd=Path.cwd(), timeout=120)
        assert proc.returncode == 2, verb
        assert "invalid choice: 'gpu' (choose from 'cpu', 'cuda', 'auto')" in proc.stderr, (verb, proc.stderr)


def test_energy_is_shown_in_mj_and_bench_json_keeps_its_field(runs) -> None:
    root, done = runs
    for name in ("enhance", "segment", "bench"):
        assert "µJ" not in done[name].stdout and "mJ" in done[name].stdout, (name, done[name].stdout)
    assert re.search(r"mean \d+\.\d{3} mJ/frame", done["enhance"].stdout)
    rows = json.loads((root / "bench.json").read_text())["rows"]
    counted = [r for r in rows if r["stats"]]
    assert counted and all(r["energy_mj"] == pytest.approx(r["energy_uj"] / 1e3) for r in counted)


# --- on a terminal: bars unless --no-progress


def _on_terminal(argv: list[str], cwd: Path, timeout: float = 300) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe); its exit code and stderr."""
    master, slave = pty.openpty()
    # a real terminal has a size; with the 0×0 of a bare pty tqdm draws nothing at all
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "snn_perception.cli", *argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(), b"".join(chunks).decode(errors="replace")


def _redraws(text: str) -> bool:
    """A bar redraw: a carriage return not part of the terminal's own line ending (\\r\\n)."""
    return re.search(r"\r(?!\n)", text) is not None


#: a verb whose bar our code draws, and one whose bar (in offline/train_unet.py) only tqdm's switch reaches
TTY_RUNS = {
    "segment": ["segment", "seg/images", "--weights", "ft.safetensors", "--threads", "1"],
    "train unet": ["train", "unet", "--data", "seg", *UNET, "--epochs", "1"],
}


@pytest.mark.parametrize("name", list(TTY_RUNS))
def test_no_progress_hides_the_bars_on_a_terminal(runs, name: str) -> None:
    root, _ = runs
    out = f"tty_{name.replace(' ', '_')}"
    rc, shown = _on_terminal([*TTY_RUNS[name], "--out", out], root)
    assert rc == 0, shown
    assert _redraws(shown), shown  # a terminal gets the bar (so the next check means something)
    rc, hidden = _on_terminal([*TTY_RUNS[name], "--out", f"{out}_quiet", "--no-progress"], root)
    assert rc == 0, hidden
    assert not _redraws(hidden), hidden


def test_the_cli_scope_sets_and_restores_tqdm_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(progress.ENV, raising=False)
    with progress.cli_scope(no_progress=True) as show:
        assert not show and not progress.enabled() and os.environ[progress.ENV] == "1"
    assert progress.ENV not in os.environ
    monkeypatch.setenv(progress.ENV, "yes")
    with progress.cli_scope(no_progress=False):
        assert not progress.enabled()  # pytest's stderr is no terminal
    assert os.environ[progress.ENV] == "yes"
