"""Short dehazer training runs: the loss falls, and resuming continues exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from snn_perception.offline.train_dhz import TrainDhzConfig, train

pytest.importorskip("snn_perception.models.dhz", reason="the snnTrans-DHZ model is not available")


@pytest.fixture()
def eight_pairs(shared: Path, tmp_path: Path) -> Path:
    """Eight real LSUI pairs in a raw/ + reference/ folder (links, no copies in the repo)."""
    src = shared / "data" / "lsui_pairs"
    names = sorted(p.name for p in (src / "raw").iterdir())[:8]
    for sub in ("raw", "reference"):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
        for name in names:
            (tmp_path / "pairs" / sub / name).symlink_to(src / sub / name)
    return tmp_path / "pairs"


def _cfg(data: Path, out: Path, epochs: int, **kw) -> TrainDhzConfig:
    base = dict(
        data=[str(data)], out=str(out), timesteps=2, crop=64, resize=128, epochs=epochs, batch=4,
        lr=2e-3, min_lr=2e-3, val_fraction=0.25, val_size=64, threads=2, device="cpu",
    )
    base.update(kw)
    return TrainDhzConfig(**base)


def test_a_few_steps_lower_the_loss(eight_pairs: Path, tmp_path: Path) -> None:
    summary = train(_cfg(eight_pairs, tmp_path / "run", epochs=6))
    losses = [row["train_total"] for row in summary["history"]]
    assert len(losses) == 6
    assert min(losses[-2:]) < losses[0], f"training loss did not fall: {losses}"
    assert (tmp_path / "run" / "best.safetensors").is_file()
    from snn_perception.runtime.checkpoint import load_checkpoint

    config = load_checkpoint(tmp_path / "run" / "best.safetensors").metadata["training"]["config"]
    assert (config["crop"], config["scale_min"], config["timesteps"]) == (64, 1.0, 2)
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 7  # header + 6 epochs


def test_resume_continues_from_the_same_step_and_optimizer_state(eight_pairs: Path, tmp_path: Path) -> None:
    # extra water draws random numbers too: the resumed run must replay those as well
    straight = train(_cfg(eight_pairs, tmp_path / "straight", epochs=3, extra_water=0.5))
    train(_cfg(eight_pairs, tmp_path / "split", epochs=2, extra_water=0.5))
    state = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert int(state["step"]) == 2 * 2  # 6 training pairs, batch 4 → 2 steps per epoch
    assert state["optimizer"]["state"], "optimizer moments were not saved"
    shutil.copy(tmp_path / "split" / "last.pt", tmp_path / "resume.pt")
    resumed = train(
        _cfg(eight_pairs, tmp_path / "split", epochs=3, extra_water=0.5, resume=str(tmp_path / "resume.pt"))
    )
    assert resumed["steps"] == straight["steps"] == 6
    final = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert int(final["epoch"]) == 2
    # Same data order, same optimizer moments, same RNG: the resumed epoch matches the straight one.
    last_resumed, last_straight = resumed["history"][-1], straight["history"][-1]
    assert last_resumed["train_total"] == pytest.approx(last_straight["train_total"], rel=1e-4)
