"""Multi-process training through torchrun (gloo on CPU) with no code change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--grad-checkpoint", "--ema", "0.9"]], ids=["plain", "ckpt-ema"])
def test_torchrun_two_processes_train_and_save(shared: Path, tmp_path: Path, extra: list[str]) -> None:
    src = shared / "data" / "euvp_test23"
    for sub in ("raw", "reference"):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
        for name in sorted(p.name for p in (src / "raw").iterdir())[:6]:
            (tmp_path / "pairs" / sub / name).symlink_to(src / sub / name)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29571",
        "-m",
        "snn_perception.cli",
        "train",
        "dhz",
        "--data",
        str(tmp_path / "pairs"),
        "--crop",
        "64",
        "--resize",
        "128",
        "--epochs",
        "2",
        "--batch",
        "2",
        "--timesteps",
        "2",
        "--val-size",
        "64",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "run"),
        *extra,
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # 5 training pairs (1 held out) over 2 ranks → 3 per rank, batch 2 → 2 steps per epoch
    assert summary["steps"] == 4
    assert (tmp_path / "run" / "best.safetensors").is_file()
