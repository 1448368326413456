"""The engine's precision scope sets TF32 for its own calls and restores the caller's settings."""

from __future__ import annotations

import numpy as np
import pytest

from snn_perception.runtime.engine import Engine, EngineConfig, _tf32_flags, tf32_scope


def _state() -> list:
    return [getattr(obj, attr) for obj, attr, _on, _off in _tf32_flags()]


@pytest.mark.parametrize("enabled", [False, True])
def test_scope_sets_tf32_and_restores_the_callers_settings(enabled: bool) -> None:
    before = _state()
    with tf32_scope(enabled):
        inside = _state()
    assert inside == [on if enabled else off for _obj, _attr, on, off in _tf32_flags()]
    assert _state() == before


def test_scope_restores_after_an_exception() -> None:
    before = _state()
    with pytest.raises(RuntimeError), tf32_scope(True):
        raise RuntimeError("boom")
    assert _state() == before


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
def test_engine_runs_with_tf32_as_asked_and_leaves_the_process_as_it_was(precision: str, monkeypatch) -> None:
    engine = Engine.load("dhz", EngineConfig(precision=precision, input_hw=(32, 32)), task="dehaze")
    seen = []
    real = engine.model.forward

    def spy(*args, **kwargs):
        seen.append(_state())
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.model, "forward", spy)
    before = _state()
    engine.run(np.zeros((32, 32, 3), np.uint8), timesteps=1)
    assert _state() == before
    want = [on if precision == "tf32" else off for _obj, _attr, on, off in _tf32_flags()]
    assert seen == [want]


def test_tf32_on_the_cpu_gives_the_fp32_output() -> None:
    image = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    outs = [
        Engine.load("dhz", EngineConfig(precision=p), task="dehaze").run(image, timesteps=2).output
        for p in ("fp32", "tf32")
    ]
    assert np.array_equal(*outs)


@pytest.mark.cuda
def test_cuda_fp32_matches_the_official_cpu_reference(shared) -> None:
    ref = np.load(shared / "reference" / "dhz_official_outputs.npz")
    engine = Engine.load(
        shared / "weights" / "snntrans_dhz_official_T4.pth", EngineConfig(device="cuda"), task="dehaze"
    )
    for case in range(4):
        image = ref[f"input_{case}"].transpose(1, 2, 0)  # H×W×3 float in [0, 1], fed as is
        y = engine.run(image, timesteps=int(ref[f"timesteps_{case}"])).output.transpose(2, 0, 1)
        err = float(np.abs(y - ref[f"output_{case}"]).max())
        print(f"case {case}: CUDA fp32 vs official CPU output, max |diff| {err:.3g}")
        assert err <= 1e-4
