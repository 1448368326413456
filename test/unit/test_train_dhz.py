"""Short dehazer training runs: the loss falls, and resuming continues exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
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
        data=[str(data)],
        out=str(out),
        timesteps=2,
        crop=64,
        resize=128,
        epochs=epochs,
        batch=4,
        lr=2e-3,
        min_lr=2e-3,
        val_fraction=0.25,
        val_size=64,
        threads=2,
        device="cpu",
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
    # extra water draws random numbers too: the resumed run must replay those as well; the
    # weight average must carry on from where it was, or the validation scores would differ
    opts = dict(extra_water=0.5, ema=0.9)
    straight = train(_cfg(eight_pairs, tmp_path / "straight", epochs=3, **opts))
    train(_cfg(eight_pairs, tmp_path / "split", epochs=2, **opts))
    state = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert int(state["step"]) == 2 * 2  # 6 training pairs, batch 4 → 2 steps per epoch
    assert state["optimizer"]["state"], "optimizer moments were not saved"
    assert int(state["ema"]["updates"]) == 4
    shutil.copy(tmp_path / "split" / "last.pt", tmp_path / "resume.pt")
    resumed = train(
        _cfg(eight_pairs, tmp_path / "split", epochs=3, resume=str(tmp_path / "resume.pt"), **opts)
    )
    assert resumed["steps"] == straight["steps"] == 6
    final = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert int(final["epoch"]) == 2
    # Same data order, same optimizer moments, same RNG: the resumed epoch matches the straight one.
    last_resumed, last_straight = resumed["history"][-1], straight["history"][-1]
    assert last_resumed["train_total"] == pytest.approx(last_straight["train_total"], rel=1e-4)
    assert last_resumed["val_loss"] == pytest.approx(last_straight["val_loss"], rel=1e-4)


def test_ema_weights_are_the_ones_validated_and_exported(eight_pairs: Path, tmp_path: Path) -> None:
    from snn_perception.runtime.checkpoint import load_checkpoint

    train(_cfg(eight_pairs, tmp_path / "run", epochs=1, ema=0.9))  # one epoch: it is the best one
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    best = load_checkpoint(tmp_path / "run" / "best.safetensors")
    averaged, raw = state["ema"]["model"], state["model"]
    assert best.metadata["training"]["config"]["ema"] == 0.9
    key = next(k for k, v in raw.items() if v.is_floating_point() and k.endswith("weight"))
    assert not torch.equal(averaged[key], raw[key]), "the average did not lag the raw weights"
    for name, value in best.state_dict.items():
        assert torch.equal(value, averaged[name]), f"{name}: best.safetensors is not the average"


def test_split_seed_keeps_the_validation_split_when_the_seed_changes(eight_pairs: Path) -> None:
    from snn_perception.offline.train_dhz import build_datasets

    def val_names(**kw) -> list[str]:
        return build_datasets(_cfg(eight_pairs, Path("unused"), epochs=1, val_fraction=0.5, **kw))[4]

    first = val_names(seed=0)
    assert val_names(seed=3, split_seed=0) == first
    assert val_names(seed=0, split_seed=3) == val_names(seed=3) != first  # default: the split follows --seed


def test_grad_checkpointing_trains_the_same_model(eight_pairs: Path, tmp_path: Path) -> None:
    plain = train(_cfg(eight_pairs, tmp_path / "plain", epochs=1))
    checked = train(_cfg(eight_pairs, tmp_path / "checked", epochs=1, grad_checkpoint=True))
    for key in ("train_total", "val_loss", "val_psnr"):
        assert checked["history"][0][key] == plain["history"][0][key], key
    a = torch.load(tmp_path / "plain" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "checked" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("first, then, words", [(0.9, 0.0, "with --ema"), (0.0, 0.9, "without --ema")])
def test_resume_with_other_ema_setting_is_refused(
    eight_pairs: Path, tmp_path: Path, first: float, then: float, words: str
) -> None:
    from snn_perception.runtime.checkpoint import WeightsError

    train(_cfg(eight_pairs, tmp_path / "run", epochs=1, val_fraction=0.0, ema=first))
    before = (tmp_path / "run" / "last.pt").read_bytes()
    resume = str(tmp_path / "run" / "last.pt")
    with pytest.raises(WeightsError, match=words):
        train(_cfg(eight_pairs, tmp_path / "run", epochs=2, val_fraction=0.0, ema=then, resume=resume))
    assert (tmp_path / "run" / "last.pt").read_bytes() == before


def test_synthetic_validation_pairs_are_rendered_from_validation_references_only(eight_pairs: Path) -> None:
    from snn_perception.offline.train_dhz import build_datasets

    plain_train, _, plain_val, _, _ = build_datasets(_cfg(eight_pairs, Path("unused"), epochs=1))
    cfg = _cfg(eight_pairs, Path("unused"), epochs=1, synthetic_val=3)
    train_set, _, val, _, val_names = build_datasets(cfg)
    assert sum(map(len, val.values())) == sum(map(len, plain_val.values())) + 3 == 5
    assert val_names[-3:] == ["synthetic_val_0", "synthetic_val_1", "synthetic_val_2"]
    real_refs = [ref for part in plain_val.values() for _, ref in part.pairs]
    for raw, ref in val["synthetic_val"].pairs:
        assert raw.shape == ref.shape == (64, 64, 3)
        assert any(np.array_equal(ref, r) for r in real_refs), "target is not a val image"
        assert not np.array_equal(raw, ref)
    assert len(train_set) == len(plain_train), "synthetic validation pairs must not reach training"


def test_synthetic_validation_needs_a_validation_split() -> None:
    with pytest.raises(ValueError, match="--synthetic-val"):
        TrainDhzConfig(data=["x"], val_fraction=0.0, synthetic_val=4)


def test_synthetic_pairs_can_be_rendered_from_a_folder_of_clean_images(
    eight_pairs: Path, tmp_path: Path
) -> None:
    import cv2

    from snn_perception.offline.train_dhz import build_datasets

    colours = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]  # RGB
    (tmp_path / "clean").mkdir()
    for i, rgb in enumerate(colours):
        img = np.zeros((48, 80, 3), np.uint8) + np.array(rgb[::-1], np.uint8)  # BGR on disk
        assert cv2.imwrite(str(tmp_path / "clean" / f"{i}.png"), img)
    clean = [str(tmp_path / "clean")]
    cfg = _cfg(eight_pairs, Path("unused"), epochs=1, synthetic=3, synthetic_from=clean)
    train_set, *_ = build_datasets(cfg)
    synthetic = train_set.datasets[-1].pairs
    refs = sorted(tuple(int(v) for v in ref.reshape(-1, 3).mean(0).round()) for _, ref in synthetic)
    assert refs == sorted(colours), "the synthetic references are not the given clean images"
    for raw, ref in synthetic:
        assert raw.shape == ref.shape == (128, 128, 3) and not np.array_equal(raw, ref)


def test_synthetic_from_needs_synthetic_pairs() -> None:
    with pytest.raises(ValueError, match="--synthetic-from"):
        TrainDhzConfig(data=["x"], synthetic_from=["clean"])


def test_without_validation_the_last_epoch_is_exported_and_nothing_claims_a_validation_loss(
    eight_pairs: Path, tmp_path: Path
) -> None:
    from snn_perception.runtime.checkpoint import load_checkpoint

    summary = train(_cfg(eight_pairs, tmp_path / "run", epochs=2, val_fraction=0.0))
    assert summary["best_val_loss"] is None and summary["selection"] == "last epoch (no validation set)"
    meta = load_checkpoint(tmp_path / "run" / "best.safetensors").metadata
    assert meta["training"]["epoch"] == 2 and meta["training"]["val_images"] == []
