"""The fused event-counting kernels give torch's numbers exactly, scale in the same pass, and fall
back to torch (same numbers) wherever they do not apply or cannot run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from snn_perception.models import event_kernels as ek
from snn_perception.models.counting import Conv, Dense, OpCounter, _graded_weights

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip("numba", reason="numba is not installed: only the torch path exists here")


def _graded(shape: tuple[int, ...], seed: int, rate: float = 0.3) -> torch.Tensor:
    """Levels 0..15 (in units of 0.25), non-zero with probability ``rate``."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.randint(1, 16, shape, generator=g).float()
    return levels * (torch.rand(shape, generator=g) < rate)


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch):
    monkeypatch.setattr(ek, "_state", {})


def _weights(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return _graded_weights(h, w, (Conv("c", 5, 3, 1, 1), Conv("u", 3, 3, 1, 1, upsample=2), Dense("d", 7.0)))


@pytest.mark.parametrize("layout", ["planar", "channels_last"])
@pytest.mark.parametrize("shape", [(4, 6, 7, 9), (1, 1, 1, 1), (3, 17, 13, 5), (8, 33, 2, 31)])
def test_sums_and_scaled_values_equal_torch_to_the_last_operation(layout, shape):
    levels = _graded(shape, seed=sum(shape))
    s = levels if layout == "planar" else levels.contiguous(memory_format=torch.channels_last)
    rows, cols = _weights(shape[2], shape[3])
    want = ek.weighted_events_torch(s, rows, cols)
    for _ in range(2):  # the checked first call, then the plain kernel call
        t = s.clone()
        got = ek.weighted_events(t, rows, cols, 0.25)
        assert got is not None and ek.kernel_status()[ek._layout(s)] is True  # 1×1×1×1 is both
        np.testing.assert_array_equal(got, want)
        assert torch.equal(t, levels * 0.25)  # scaled in place, exactly as mul_ would


def test_events_row_is_the_count_of_non_zero_entries():
    s = _graded((2, 3, 4, 5), seed=1)
    got = ek.weighted_events(s, np.ones((1, 4)), np.ones((1, 5)))
    assert got is not None and got[0] == float((s != 0).sum())


@pytest.mark.parametrize(
    "tensor",
    [
        _graded((2, 3, 4, 5), 0).to(torch.float64),
        _graded((2, 3, 4, 5), 0).to(torch.bfloat16),
        _graded((2, 3, 4, 5), 0)[:, :, :, ::2],  # strided: neither layout
        _graded((6, 4, 5), 0),  # not 4-D
    ],
    ids=["float64", "bf16", "strided", "3-d"],
)
def test_tensors_no_kernel_reads_are_left_to_torch_untouched(tensor):
    before = tensor.clone()
    h, w = tensor.shape[-2:]
    assert ek.weighted_events(tensor, np.ones((1, h)), np.ones((1, w)), 0.25) is None
    assert torch.equal(tensor, before)


def test_a_kernel_that_fails_its_check_is_dropped_for_torch_and_says_why(monkeypatch, caplog):
    s = _graded((2, 3, 4, 5), seed=2)
    rows, cols = np.ones((1, 4)), np.ones((1, 5))
    calls = []
    monkeypatch.setattr(ek, "_run", lambda *a: calls.append(1) or np.array([-1.0]))
    with caplog.at_level("WARNING", logger=ek.__name__):
        assert ek.weighted_events(s, rows, cols, 0.5) is None
    assert ek.kernel_status()["planar"] is False
    assert "unusable here, counting with torch" in caplog.text
    assert torch.equal(s, _graded((2, 3, 4, 5), seed=2))  # untouched: the torch path scales it
    caplog.clear()
    assert ek.weighted_events(s, rows, cols, 0.5) is None  # later frames: torch, no new check
    assert calls == [1] and "unusable" not in caplog.text


def _counted(monkeypatch, kernels: bool, hw: tuple[int, int], steps: int, model: str = "spiking_unet"):
    from snn_perception.runtime.engine import Engine

    monkeypatch.setattr(ek, "_state", {} if kernels else dict.fromkeys(ek._KINDS, False))
    engine = Engine.load(model)
    image = (np.random.default_rng(3).random((*hw, 3)) * 255).astype(np.uint8)
    on = engine.run(image, timesteps=steps, count_ops=True)
    off = engine.run(image, timesteps=steps, count_ops=False)
    assert np.array_equal(on.output, off.output)  # counting (and its deferred scaling) changes nothing
    return on


@pytest.mark.parametrize(("hw", "steps"), [((64, 64), 1), ((50, 70), 4)])
def test_the_shipped_segmenter_counts_the_same_with_and_without_kernels(monkeypatch, hw, steps):
    on_k = _counted(monkeypatch, True, hw, steps)
    used = ek.kernel_status()  # the neurons counted their events as they fired
    assert used["multi_threshold"] is used["multi_threshold_inplace"] is True
    on_t = _counted(monkeypatch, False, hw, steps)
    assert np.array_equal(on_k.output, on_t.output)
    assert on_k.stats.synaptic_ops == on_t.stats.synaptic_ops > 0
    assert on_k.stats.mean_spike_rate == on_t.stats.mean_spike_rate
    assert on_k.stats.layer_spike_rates == on_t.stats.layer_spike_rates
    assert on_k.stats.layer_names == on_t.stats.layer_names


def test_two_threads_counting_at_once_get_their_own_numbers():
    """A ROS process may count in two engines' worker threads at once (thread-safe layer)."""
    tensors = [
        _graded((4, 8, 32, 32), seed=i).contiguous(memory_format=torch.channels_last) for i in range(2)
    ]
    rows, cols = _weights(32, 32)
    want = [ek.weighted_events_torch(t, rows, cols) for t in tensors]
    ek.warm()
    results: dict[int, list] = {0: [], 1: []}

    def work(i: int) -> None:
        for _ in range(30):
            results[i].append(ek.weighted_events(tensors[i], rows, cols))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for i in range(2):
        assert len(results[i]) == 30 and all(np.array_equal(r, want[i]) for r in results[i])


def test_counter_graded_scales_on_the_torch_path_too(monkeypatch):
    monkeypatch.setattr(ek, "_state", {"planar": False, "channels_last": False})
    levels = _graded((2, 3, 4, 5), seed=4)
    s = levels.clone()
    counter = OpCounter()
    counter.graded("g", s, Conv("c", 2, 3, 1, 1), scale=0.25)
    assert torch.equal(s, levels * 0.25)
    assert counter.result().synaptic_ops > 0


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120)


def test_the_environment_switch_forces_torch_and_a_bad_value_is_named():
    code = "from snn_perception.models import event_kernels as e; print(e.warm())"
    forced = _run_python(code, SNN_EVENT_KERNELS="torch")
    assert forced.returncode == 0 and "'planar': False, 'channels_last': False" in forced.stdout, (
        forced.stderr
    )
    bad = _run_python("import logging; logging.basicConfig(); " + code, SNN_EVENT_KERNELS="fast")
    assert bad.returncode == 0, bad.stderr
    assert "SNN_EVENT_KERNELS='fast': expected 'numba' (default) or 'torch'" in bad.stderr
    assert "'planar': True" in bad.stdout


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_firing_total_equals_torch_comparisons(dtype, channels_last):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 5, 9, 7, generator=g, dtype=dtype)
    x.view(-1)[:5] = 0.75  # ties: x == c fires (≥)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    currents = torch.tensor([0.5, 0.75, 0.875, 1.5], dtype=dtype).view(-1, 1)
    weights = torch.tensor([1.0, 2.0, 1.0, 3.0], dtype=torch.float64)
    want = float(sum(w * float((x >= c).sum()) for c, w in zip(currents.view(-1), weights, strict=True)))
    for _ in range(2):  # checked first call, then the kernel alone
        assert ek.firing_total(x, currents, weights) == want
    assert ek.kernel_status()["reached"] is True


def test_firing_total_leaves_gapped_and_bf16_tensors_to_torch():
    x = torch.randn(2, 4, 6, 6)
    currents, weights = torch.tensor([0.5]), torch.tensor([1.0], dtype=torch.float64)
    assert ek.firing_total(x[:, :, :, ::2], currents, weights) is None
    assert ek.firing_total(x.bfloat16(), currents.bfloat16(), weights) is None


def test_the_shipped_dehazer_counts_the_same_with_and_without_kernels(monkeypatch):
    on_k = _counted(monkeypatch, True, (48, 40), 4, model="dhz")
    used = ek.kernel_status()
    assert used["lif"] is used["fire_pool"] is used["fire_pool_constant"] is True  # they really ran
    on_t = _counted(monkeypatch, False, (48, 40), 4, model="dhz")
    assert np.array_equal(on_k.output, on_t.output)
    assert on_k.stats.synaptic_ops == on_t.stats.synaptic_ops > 0
    assert on_k.stats.layer_spike_rates == on_t.stats.layer_spike_rates
    assert on_k.stats.analog_macs == on_t.stats.analog_macs


def test_firing_total_split_over_threads_adds_up_exactly(monkeypatch):
    monkeypatch.setattr(ek, "_MIN_SPLIT", 64)  # split even this small tensor
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        x = torch.randn(1, 7, 13, 11, generator=torch.Generator().manual_seed(8))
        currents = torch.tensor([0.25, 0.5, 1.0]).view(-1, 1)
        weights = torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64)
        want = float(sum(w * float((x >= c).sum()) for c, w in zip(currents.view(-1), weights, strict=True)))
        assert ek.firing_total(x, currents, weights) == want  # checked first call
        assert ek.firing_total(x, currents, weights) == want  # the split kernel alone
    finally:
        torch.set_num_threads(threads)


def test_a_numba_that_cannot_build_leaves_counting_to_torch(monkeypatch, caplog):
    def broken():
        raise ImportError("numba: incompatible numpy")

    monkeypatch.setattr(ek, "_kernels", None)
    monkeypatch.setattr(ek, "_build", broken)
    s = _graded((2, 3, 4, 5), seed=9)
    with caplog.at_level("WARNING", logger=ek.__name__):
        assert ek.weighted_events(s, np.ones((1, 4)), np.ones((1, 5))) is None
    assert "numba kernels unusable, counting with torch: ImportError" in caplog.text
    assert set(ek.kernel_status().values()) == {False}


@pytest.mark.parametrize("model", ["dhz", "spiking_unet"])
def test_engine_warm_up_readies_the_kernels_its_model_counts_with(monkeypatch, model):
    from snn_perception.runtime.engine import Engine, EngineConfig

    Engine.load(model, EngineConfig(count_ops=True)).warmup(hw=(32, 32))
    assert set(ek.kernel_status().values()) == {True}  # the first counted frame compiles nothing
