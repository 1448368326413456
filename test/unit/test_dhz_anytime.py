"""Dehazer v2 pieces: the normalized (anytime) read-out, per-step outputs, and mixing sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snn_perception.models.dhz import DHZConfig, SnnTransDHZ
from snn_perception.models.neurons import leaky_readout, readout_gain
from snn_perception.offline import dhz_mix
from snn_perception.offline.losses import LossWeights, RestorationLoss
from snn_perception.offline.pairs import list_pairs, split_pairs
from snn_perception.offline.train_dhz import TrainDhzConfig, load_init, train
from snn_perception.runtime.checkpoint import load_checkpoint, save_checkpoint


def _model(readout: str, seed: int = 0) -> SnnTransDHZ:
    torch.manual_seed(seed)
    model = SnnTransDHZ(DHZConfig(readout=readout)).eval()
    with torch.no_grad():  # lower thresholds so the random network fires at all
        for m in model.modules():
            if hasattr(m, "v_threshold") and isinstance(m.v_threshold, torch.Tensor):
                m.v_threshold.fill_(0.05)
    return model


def test_normalized_readout_of_a_constant_is_that_constant_after_every_step() -> None:
    x = torch.full((8, 2, 3), 0.7)
    steps = (1, 2, 3, 8)
    out = leaky_readout(x, 2.0, normalized=True, steps=steps)
    assert torch.allclose(out, torch.full((4, 2, 3), 0.7))
    leaky = leaky_readout(x, 2.0, steps=steps)  # the published read-out: its scale grows with T
    assert torch.allclose(leaky[:, 0, 0], torch.tensor([readout_gain(2.0, t) * 0.7 for t in steps]))


@pytest.mark.parametrize("readout", ["leaky", "normalized"])
def test_step_t_of_one_run_equals_a_run_of_t_steps(readout: str) -> None:
    """Anytime training scores the outputs after 1, 2, 4, … steps of one run: each must be what
    the engine gives at that T (the network is causal in time)."""
    model = _model(readout)
    x = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        per_step = model(x, 4, steps=(1, 2, 4))
        for i, t in enumerate((1, 2, 4)):
            assert torch.allclose(per_step[i], model(x, t), atol=1e-5), f"step {t}"
    with pytest.raises(ValueError, match="must end at timesteps"):
        model(x, 8, steps=(1, 2, 4))


def test_leaky_weights_start_a_normalized_model_with_the_same_output(tmp_path: Path) -> None:
    leaky = _model("leaky")
    path = tmp_path / "leaky.safetensors"
    meta = {"arch": "snntrans_dhz", "task": "dehaze", "default_timesteps": 4}
    save_checkpoint(path, leaky.state_dict(), meta)
    normalized = SnnTransDHZ(DHZConfig(readout="normalized")).eval()
    load_init(normalized, str(path))
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(normalized(x, 4), leaky(x, 4), atol=1e-5)
        assert not torch.allclose(normalized(x, 1), leaky(x, 1), atol=1e-3)  # T = 1 is where they differ


def _folder(root: Path, n: int, value: int) -> Path:
    import cv2

    for sub in ("raw", "reference"):
        (root / sub).mkdir(parents=True)
        for i in range(n):
            img = np.full((40, 40, 3), value + (sub == "reference"), np.uint8)
            assert cv2.imwrite(str(root / sub / f"{i:03d}.png"), img)
    return root


def test_each_source_keeps_its_own_split_and_the_cap_moves_extra_validation_pairs_to_training(
    tmp_path: Path,
) -> None:
    a, b = _folder(tmp_path / "a", 10, 10), _folder(tmp_path / "b", 40, 100)
    sources = dhz_mix.split_sources([str(a), str(b)], [1.0, 3.0], [None, 64], 0.2, 5, seed=0)
    assert [s.name for s in sources] == ["a", "b"]
    alone_train, alone_val = split_pairs(list_pairs(a), 0.2, 0)
    assert sources[0].val == alone_val and sources[0].train == alone_train  # mixing does not move a's split
    assert len(sources[1].val) == 5 and len(sources[1].train) == 35
    _, b_val = split_pairs(list_pairs(b), 0.2, 0)
    assert sources[1].val == b_val[:5]


def test_the_sampler_draws_each_source_in_proportion_to_its_weight() -> None:
    parts = [("small", 10, 1.0), ("large", 1000, 1.0), ("synthetic", 50, 2.0)]
    sampler = dhz_mix.mixing_sampler(parts, 20_000, torch.Generator().manual_seed(0))
    idx = np.array(list(sampler))
    shares = [np.mean(idx < 10), np.mean((idx >= 10) & (idx < 1010)), np.mean(idx >= 1010)]
    assert np.allclose(shares, [0.25, 0.25, 0.5], atol=0.02), shares
    assert dhz_mix.mixing_shares(parts) == {"small": 0.25, "large": 0.25, "synthetic": 0.5}


def test_validation_weighs_every_source_equally(tmp_path: Path) -> None:
    from snn_perception.offline.pairs import PairedImages

    a, b = _folder(tmp_path / "a", 1, 10), _folder(tmp_path / "b", 4, 200)
    sets = {n: PairedImages.from_paths(list_pairs(p), eval_hw=(32, 32)) for n, p in (("a", a), ("b", b))}
    model = _model("normalized")
    loss = RestorationLoss(LossWeights())
    row = dhz_mix.validate_sources(model, sets, 2, (1, 2), loss, torch.device("cpu"))
    assert row["val_loss"] == pytest.approx((row["val_loss_a"] + row["val_loss_b"]) / 2)
    assert row["val_loss_T2"] == pytest.approx(row["val_loss"])
    assert {"val_psnr_T1", "val_ssim_T1", "val_psnr_a", "val_ssim_b"} <= set(row)


@pytest.mark.parametrize(
    "kw, flag",
    [
        (dict(mix=[1.0]), "--mix"),  # two folders need two weights
        (dict(mix=[1.0, -1.0]), "--mix"),
        (dict(source_resize=[512]), "--source-resize"),
        (dict(epoch_size=100), "--epoch-size"),  # only with --mix
        (dict(anytime=[1, 2, 8]), "--anytime"),  # must include --timesteps 4
        (dict(readout="mean"), "--readout"),
        (dict(anytime=[1, 4], anytime_weights=[1.0]), "--anytime-weights"),  # one per step
        (dict(anytime=[1, 4], anytime_weights=[1.0, 0.0]), "--anytime-weights"),
        (dict(anytime=[1, 4], monotone=-1.0), "--monotone"),
        (dict(monotone=1.0), "--monotone"),  # needs two or more read-outs to order
        (dict(anytime=[1, 4], monotone=1.0, monotone_per="frame"), "--monotone-per"),
        (dict(anytime=[1, 4], consistency=float("nan")), "--consistency"),
        (dict(consistency=1.0), "--consistency"),  # needs a later read-out to pull toward
        (
            dict(anytime=[1, 4], monotone_per="image"),
            "--monotone-per image: must be used only with --monotone",
        ),
        (dict(val_max=3, val_fraction=0.0), "--val-max 3: must be used only with --val-fraction"),
    ],
)
def test_mixing_and_anytime_settings_are_checked_with_the_flag_named(kw: dict, flag: str) -> None:
    with pytest.raises(ValueError, match=flag):
        TrainDhzConfig(data=["a", "b"], **kw)


def test_a_mixed_anytime_run_reports_every_source_and_step_and_exports_a_normalized_model(
    shared: Path, tmp_path: Path
) -> None:
    from snn_perception.runtime.engine import Engine

    data = shared / "data"
    cfg = TrainDhzConfig(
        data=[str(data / "ufo120_sample"), str(data / "uieb_real")],
        out=str(tmp_path / "run"),
        timesteps=2,
        anytime=[2, 1],
        anytime_weights=[3.0, 1.0],  # follows the order given: T = 2 weighs 3
        monotone=0.5,
        monotone_per="image",
        consistency=0.5,
        readout="normalized",
        mix=[1.0, 1.0],
        epoch_size=4,
        source_resize=[64, 64],
        crop=64,
        epochs=1,
        batch=2,
        val_max=2,
        val_size=32,
        threads=2,
        device="cpu",
    )
    summary = train(cfg)
    row = summary["history"][0]
    assert {"val_loss_ufo120_sample", "val_loss_uieb_real", "val_psnr_T1", "val_psnr_T2"} <= set(row)
    assert row["step"] == 2  # epoch_size 4, batch 2
    assert row["train_consistency"] > 0  # the two read-outs differ, and the term was added
    ckpt = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert ckpt.metadata["readout"] == "normalized" and ckpt.metadata["default_timesteps"] == 2
    assert len(ckpt.metadata["training"]["val_images"]) == 4
    engine = Engine.load(str(tmp_path / "run" / "best.safetensors"))
    assert engine.model.cfg.readout == "normalized"


def test_anytime_without_weights_trains_with_equal_weights(shared: Path, tmp_path: Path) -> None:
    """``--anytime`` alone (the documented default: equal weights) crashed at the first step with a
    ``zip()`` length error; it must train exactly as ``--anytime-weights 1 1`` does."""
    data = shared / "data" / "ufo120_sample"
    common = dict(data=[str(data)], timesteps=2, anytime=[1, 2], readout="normalized", resize=64, crop=64,
                  epochs=1, batch=2, val_size=32, threads=1, device="cpu")  # fmt: skip
    plain = train(TrainDhzConfig(out=str(tmp_path / "plain"), **common))["history"][0]
    equal = train(TrainDhzConfig(out=str(tmp_path / "equal"), anytime_weights=[1.0, 1.0], **common))[
        "history"
    ][0]
    assert plain["train_total"] == pytest.approx(equal["train_total"], rel=1e-6)
    assert plain["val_loss"] == pytest.approx(equal["val_loss"], rel=1e-6)
