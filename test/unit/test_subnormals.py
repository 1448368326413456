"""Weights never carry subnormal ("denormal") floats into inference, and activations do not make any.

Arithmetic on subnormals runs in microcode on many x86 CPUs: the official snnTrans-DHZ checkpoint
(114,690 subnormal weights) took 554 ms per 256² frame on such a machine against 71 ms for the same
network without them, and that slowed the node tests there tenfold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from snn_perception.models import neurons
from snn_perception.runtime.checkpoint import count_subnormals, flush_subnormals_, load_checkpoint
from snn_perception.runtime.engine import Engine, EngineConfig
from snn_perception.runtime.image_codec import read_image_file

OFFICIAL = Path("weights") / "snntrans_dhz_official_T4.pth"


def _subnormal(t: torch.Tensor) -> int:
    if not t.is_floating_point():
        return 0
    return int(((t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)).sum())


def test_the_official_checkpoint_holds_subnormals_that_loading_removes(shared: Path) -> None:
    raw = load_checkpoint(shared / OFFICIAL).state_dict
    assert sum(_subnormal(v) for v in raw.values()) > 100_000  # what makes the fix needed
    engine = Engine.load(shared / OFFICIAL, EngineConfig(), task="dehaze")
    assert count_subnormals(engine.model, tensors_only=True) == 0
    # the scalar thresholds (about ±4.9e-41) are compared, never multiplied: they are kept exactly
    theta = engine.model.H_est.l_snn_trans_Lx[5].attn.q_lif.v_threshold.item()
    assert 0 < theta < np.finfo(np.float32).tiny


def test_flush_sets_only_subnormal_tensor_entries_to_zero() -> None:
    lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1e-40, 0.5, -1e-41], [0.0, -2.0, 1e-30]]))
        lin.bias.copy_(torch.tensor([-3e-39, 1e-37]))
    assert count_subnormals(lin) == 3
    assert flush_subnormals_(lin) == 3
    assert lin.weight.tolist() == [[0.0, 0.5, 0.0], [0.0, -2.0, torch.tensor(1e-30).item()]]
    assert lin.bias[0].item() == 0.0 and lin.bias[1].item() == torch.tensor(1e-37).item()
    assert count_subnormals(lin) == 0


def test_the_shipped_dehazer_keeps_activations_and_membranes_normal_at_long_t(
    shared: Path, monkeypatch
) -> None:
    """T = 64 on a real image: no layer output and no leaky membrane of the shipped ``dhz`` becomes
    subnormal (a membrane fed zero halves each step; 64 halvings of anything above 1e-19 stay
    normal). The official checkpoint, flushed, still makes some in one value path (a BN fed by
    near-zero weights); see the timing issue's note."""
    engine = Engine.load("dhz", EngineConfig(input_hw=(64, 64)), task="dehaze")
    found: dict[str, int] = {}

    def hook(module, _inp, out) -> None:
        for t in out if isinstance(out, tuple) else (out,):
            if isinstance(t, torch.Tensor) and _subnormal(t):
                found[getattr(module, "layer_name", type(module).__name__)] = _subnormal(t)

    real_charge = neurons.charge_

    def charge(v, x, tmp, tau):
        real_charge(v, x, tmp, tau)
        if _subnormal(v):
            found["membrane"] = found.get("membrane", 0) + _subnormal(v)

    import importlib

    for name in ("snn_perception.models.neurons", "snn_perception.models.dhz"):
        if hasattr(importlib.import_module(name), "charge_"):  # wherever the membrane update is called
            monkeypatch.setattr(f"{name}.charge_", charge)
    handles = [m.register_forward_hook(hook) for m in engine.model.modules()]
    try:
        image = read_image_file(next((shared / "data" / "euvp_test23" / "raw").iterdir()))
        engine.run(image, timesteps=64)
    finally:
        for h in handles:
            h.remove()
    assert found == {}, found
