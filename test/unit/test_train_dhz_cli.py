"""Every ``train dhz`` option reaches the trainer (an option that is parsed but dropped is a silent bug)."""

from __future__ import annotations

import argparse
from dataclasses import asdict, fields

from snn_perception.commands import train_dhz
from snn_perception.offline.train_dhz import TrainDhzConfig


def test_every_option_reaches_the_trainer_config() -> None:
    parser = argparse.ArgumentParser()
    train_dhz.add_arguments(parser)
    argv = [
        "--data",
        "a",
        "b",
        "--variant",
        "paper",
        "--dim",
        "96",
        "--widen-lr",
        "5",
        "--init",
        "dhz",
        "--timesteps",
        "6",
        "--anytime",
        "1",
        "6",
        "--consistency",
        "0.5",
        "--crop",
        "128",
        "--resize",
        "384",
        "--scale-min",
        "0.4",
        "--extra-water",
        "0.3",
        "--tone-jitter",
        "0.2",
        "--ema",
        "0.95",
        "--grad-checkpoint",
        "--epochs",
        "7",
        "--batch",
        "3",
        "--lr",
        "0.003",
        "--min-lr",
        "0.0002",
        "--val-fraction",
        "0.3",
        "--val-size",
        "192",
        "--seed",
        "5",
        "--split-seed",
        "2",
        "--synthetic",
        "9",
        "--synthetic-val",
        "4",
        "--synthetic-from",
        "c",
        "--w-mse",
        "1.5",
        "--w-ssim",
        "0.7",
        "--w-tv",
        "0.1",
        "--resume",
        "r.pt",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        "o",
    ]
    cfg = train_dhz.config_from_args(parser.parse_args(argv))
    got = asdict(cfg)
    want = dict(
        data=["a", "b"],
        variant="paper",
        dim=96,
        widen_lr=5.0,
        timesteps=6,
        anytime=[1, 6],
        consistency=0.5,
        crop=128,
        resize=384,
        scale_min=0.4,
        extra_water=0.3,
        tone_jitter=0.2,
        ema=0.95,
        grad_checkpoint=True,
        epochs=7,
        batch=3,
        lr=0.003,
        min_lr=0.0002,
        val_fraction=0.3,
        val_size=192,
        seed=5,
        split_seed=2,
        synthetic=9,
        synthetic_val=4,
        synthetic_from=["c"],
        resume="r.pt",
        device="cpu",
        threads=1,
        out="o",
        loss={"mse": 1.5, "ssim": 0.7, "tv": 0.1},
    )
    for key, value in want.items():
        assert got[key] == value, f"--{key.replace('_', '-')}: config has {got[key]!r}, expected {value!r}"
    defaults = TrainDhzConfig(data=["a"])
    untouched = {f.name for f in fields(TrainDhzConfig)} - set(want) - {"command", "init"}
    for name in untouched:  # no CLI flag: must keep the dataclass default
        assert got[name] == asdict(defaults)[name], name
