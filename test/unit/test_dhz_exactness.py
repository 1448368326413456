"""The port reproduces the official snnTrans-DHZ outputs with the published checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snn_perception.models.dhz import SnnTransDHZ
from snn_perception.runtime.checkpoint import load_checkpoint, load_into

TOL = 1e-4


@pytest.fixture(scope="module")
def official(shared: Path) -> tuple[SnnTransDHZ, dict[str, np.ndarray]]:
    ckpt = load_checkpoint(shared / "weights" / "snntrans_dhz_official_T4.pth")
    assert ckpt.metadata["variant"] == "official"
    model = SnnTransDHZ().eval()
    load_into(model, ckpt)
    ref = np.load(shared / "reference" / "dhz_official_outputs.npz")
    return model, {k: ref[k] for k in ref.files}


def _cases(ref: dict[str, np.ndarray]) -> list[int]:
    return sorted(int(k.split("_")[1]) for k in ref if k.startswith("input_"))


def test_reference_has_the_documented_cases(official) -> None:
    _, ref = official
    assert _cases(ref) == [0, 1, 2, 3]


@pytest.mark.parametrize("case", [0, 1, 2, 3])
def test_batch_of_one_matches_official_output(official, case: int) -> None:
    model, ref = official
    x = torch.from_numpy(ref[f"input_{case}"])[None]
    with torch.no_grad():
        y = model(x, int(ref[f"timesteps_{case}"]))[0].numpy()
    err = np.abs(y - ref[f"output_{case}"]).max()
    assert err <= TOL, f"case {case}: max abs error {err:.3g} > {TOL}"


@pytest.mark.parametrize("case", [0, 1, 2, 3])
def test_inside_a_batch_of_three_matches_official_output(official, case: int) -> None:
    model, ref = official
    x = torch.from_numpy(ref[f"input_{case}"])
    others = [x.flip(-1), x.flip(-2).roll(17, -1)]
    batch = torch.stack([others[0], x, others[1]])
    with torch.no_grad():
        y = model(batch, int(ref[f"timesteps_{case}"]))[1].numpy()
    err = np.abs(y - ref[f"output_{case}"]).max()
    assert err <= TOL, f"case {case} in a batch: max abs error {err:.3g} > {TOL}"


def test_denormal_thresholds_are_kept_as_float32(shared: Path) -> None:
    """Block 5 of the LAB branch has thresholds around ±4.9e-41; they must survive loading."""
    model = SnnTransDHZ()
    load_into(model, load_checkpoint(shared / "weights" / "snntrans_dhz_official_T4.pth"))
    theta = model.H_est.l_snn_trans_Lx[5].attn.q_lif.v_threshold.item()
    assert 0 < theta < np.finfo(np.float32).tiny
    assert model.H_est.l_snn_trans_Lx[5].attn.attn_lif.v_threshold.item() < 0
