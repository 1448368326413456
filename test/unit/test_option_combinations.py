"""An option that would do nothing beside the others given is refused, naming it and what it needs.

Each of these was accepted and silently ignored (or, for ``finetune --workers -1``, quietly changed):
the user believed it took effect. Every case runs the real CLI and must stop before any work.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_run import cli, refused, snapshot


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    for sub in ("seg/images", "seg/masks", "pairs/raw", "pairs/reference", "bag"):
        (tmp_path / sub).mkdir(parents=True)
    return tmp_path


UNET = ["train", "unet", "--data", "seg"]
FINETUNE = ["finetune", "--weights", "spiking_unet", "--data", "seg", "--out", "f.safetensors"]


@pytest.mark.parametrize(
    "argv, words",
    [
        ([*UNET, "--arch", "lite", "--width", "16"], ["--width 16", "--arch unet"]),
        ([*UNET, "--head", "denoise", "--classes", "5"], ["--classes 5", "--head segment"]),
        ([*UNET, "--head", "denoise", "--dice", "1"], ["--dice 1.0", "--head denoise"]),
        ([*UNET, "--head", "denoise", "--augment", "full"], ["--augment full", "crop"]),
        (["train", "dhz", "--data", "pairs", "--monotone-per", "image"], ["--monotone-per image", "W > 0"]),
        (["demo", "--bag", "bag", "--seconds", "5", "--out", "d"], ["--seconds 5.0", "--bag replaces"]),
        (["demo", "--data", "pairs", "--seconds", "5", "--out", "d"], ["--seconds 5.0", "--data replaces"]),
        ([*FINETUNE, "--workers", "-1"], ["--workers -1", "0 or more"]),
        (
            ["evaluate", "--task", "dehaze", "--data", "pairs", "pairs/"],
            ["--data pairs/", "same folder as pairs"],
        ),
        (["evaluate", "--task", "dehaze", "--data", "pairs", "--weights", "--method"], ["nothing to score"]),
        (["replay", "bag", "--no-dehaze", "--no-segment", "--out", "r"], ["--no-dehaze and --no-segment"]),
        (
            ["evaluate", "--task", "segment", "--data", "seg", "--seed", "3"],
            ["--seed: only with --split train"],
        ),
    ],
    ids=[
        "unet-width-lite",
        "unet-classes-denoise",
        "unet-dice-denoise",
        "unet-augment-denoise",
        "dhz-monotone-per",
        "demo-seconds-bag",
        "demo-seconds-data",
        "finetune-workers",
        "evaluate-twice",
        "evaluate-nothing",
        "replay-no-model",
        "evaluate-seed-all",
    ],
)
def test_an_option_that_would_be_ignored_is_refused(work: Path, argv: list[str], words: list[str]) -> None:
    before = snapshot(work)
    dirs = sorted(p for p in work.rglob("*") if p.is_dir())
    refused(cli(*argv, cwd=work), *words)
    assert snapshot(work) == before and sorted(p for p in work.rglob("*") if p.is_dir()) == dirs
