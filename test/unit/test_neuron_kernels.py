"""The fused neuron kernels fire, pool and count exactly as the torch paths do, and leave to torch
(same numbers) whatever they do not fit or cannot run."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from snn_perception.models import event_kernels as ek
from snn_perception.models import multithreshold as mt
from snn_perception.models import neuron_kernels as nk
from snn_perception.models import neurons
from snn_perception.models.neurons import ALIF

pytest.importorskip("numba", reason="numba is not installed: only the torch path exists here")

FORMATS = {"channels_last": torch.channels_last, "planar": torch.contiguous_format}


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch):
    monkeypatch.setattr(ek, "_state", {})


def _currents(shape: tuple[int, ...], seed: int, fmt: torch.memory_format) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 0.4 + 0.1).contiguous(memory_format=fmt)


def _cell(tau: float = 2.0, reset: str = "none", theta: float = 0.25) -> ALIF:
    return ALIF(tau=tau, v_threshold=theta, reset=reset).requires_grad_(False)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("reset", ["none", "subtract"])
@pytest.mark.parametrize(
    ("tau", "steps", "shape"), [(2.0, 4, (2, 5, 7, 9)), (4.0, 3, (1, 3, 1, 1)), (0.5, 2, (1, 8, 6, 5))]
)
def test_lif_spikes_and_count_equal_torch(fmt, reset, tau, steps, shape):
    x = _currents((steps * shape[0], *shape[1:]), seed=sum(shape), fmt=FORMATS[fmt])
    x[0, 0, 0, 0], x[-1, -1, -1, -1] = float("inf"), -float("inf")  # the arithmetic, not just the range
    seq = x.view(steps, *shape)
    cell = _cell(tau, reset)
    want = cell._forward_torch(seq)
    for _ in range(2):  # the checked first call, then the plain kernel call
        got, count = cell.forward_counted(seq)
        assert count is not None and ek.kernel_status()["lif"] is True
        assert torch.equal(got, want) and count == int(want.sum())
        assert got.stride() == want.stride()  # the caller's layout
    assert torch.equal(cell(seq), want)  # forward (counting off) takes the kernel too


def test_lif_leaves_what_it_does_not_fit_to_torch():
    x = _currents((2, 3, 4, 6), seed=1, fmt=torch.contiguous_format)
    cell = _cell()
    assert nk.lif_steps(x, cell.v_threshold, 3.0, False, cell._forward_torch) is None  # 1/3 is inexact
    assert nk.lif_steps(x.double(), cell.v_threshold, 2.0, False, cell._forward_torch) is None
    assert nk.lif_steps(x[:, :, :, ::2], cell.v_threshold, 2.0, False, cell._forward_torch) is None
    assert nk.lif_steps(x.transpose(0, 1), cell.v_threshold, 2.0, False, cell._forward_torch) is None
    trained = ALIF()
    out, count = trained.forward_counted(x.requires_grad_())  # autograd: torch, counted by the caller
    assert count is None and out.requires_grad


def test_lif_split_over_threads_adds_up_exactly(monkeypatch):
    monkeypatch.setattr(nk, "_MIN_SPLIT", 16)  # split even this small layer
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        x = _currents((4, 7, 9, 11), seed=2, fmt=torch.channels_last)
        cell = _cell()
        want = cell._forward_torch(x.view(2, 2, 7, 9, 11))
        for _ in range(2):
            got, count = cell.forward_counted(x.view(2, 2, 7, 9, 11))
            assert torch.equal(got, want) and count == int(want.sum())
        # the pooling kernels split by rows, the multi-threshold one by whole pixels
        z = _currents((2, 6, 12, 10), seed=3, fmt=torch.channels_last)
        pooled, spikes = neurons.fire_pool_constant_counted(cell, z, 4, count=True)
        assert torch.equal(pooled, neurons._fire_pool_constant(z, cell.v_threshold, 2.0, 4))
        assert float(sum(spikes)) == float(sum(neurons.constant_spike_totals(cell, z, 4)))
        parts: list[torch.Tensor] = []
        want_pool = neurons._fire_pool_torch(z, cell.v_threshold, 2.0, 2, parts)
        counts: list[torch.Tensor] = []
        assert torch.equal(neurons._fire_pool(z, cell.v_threshold, 2.0, 2, counts), want_pool)
        assert float(sum(counts)) == float(sum(p.sum(dtype=torch.float64) for p in parts))
        events: list = []
        levels = mt.mt_multistep(z.view(2, 1, 6, 12, 10) * 4, (2.0, 1.0, 0.5, 0.25), events=events)[0]
        np.testing.assert_array_equal(
            events[0], ek.events_per_pixel_torch(levels.flatten(0, 1)).double().numpy()
        )
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("steps", "shape"), [(4, (1, 16, 8, 12)), (1, (2, 3, 2, 2)), (3, (2, 5, 6, 10))])
def test_fire_pool_equals_torch_and_counts_full_resolution_spikes(fmt, steps, shape):
    x = _currents((steps * shape[0], *shape[1:]), seed=steps, fmt=FORMATS[fmt])
    theta = torch.tensor(0.25)
    parts: list[torch.Tensor] = []
    want = neurons._fire_pool_torch(x, theta, 2.0, steps, parts)
    for _ in range(2):
        counts: list[torch.Tensor] = []
        got = neurons._fire_pool(x, theta, 2.0, steps, counts)
        assert ek.kernel_status()["fire_pool"] is True
        assert torch.equal(got, want) and got.stride() == want.stride()
        assert float(sum(counts)) == float(sum(p.sum(dtype=torch.float64) for p in parts)) > 0
    assert torch.equal(neurons._fire_pool(x, theta, 2.0, steps), want)  # counting off


def test_fire_pool_leaves_odd_sizes_to_torch():
    x = _currents((4, 3, 5, 6), seed=4, fmt=torch.channels_last)
    assert nk.fire_pool(x, torch.tensor(0.25), 2.0, 2, lambda x: None) is None


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("count", [True, False])
@pytest.mark.parametrize(("steps", "shape"), [(4, (1, 16, 8, 12)), (8, (2, 3, 2, 2)), (1, (1, 4, 6, 10))])
def test_fire_pool_constant_equals_torch_with_its_counts(fmt, count, steps, shape):
    x = _currents(shape, seed=steps + 7, fmt=FORMATS[fmt])
    x[0, 0, 0, 0], x[0, -1, -1, -1] = float("nan"), float("inf")  # pooled as torch.maximum pools
    cell = _cell()
    want = neurons._fire_pool_constant(x, cell.v_threshold, 2.0, steps)
    want_spikes = neurons.constant_spike_totals(cell, x, steps)
    for _ in range(2):
        got, spikes = neurons.fire_pool_constant_counted(cell, x, steps, count)
        assert ek.kernel_status()["fire_pool_constant"] is True
        assert torch.equal(got, want) and got.stride() == want.stride()
        if count:
            assert float(sum(spikes)) == float(sum(want_spikes)) > 0
        else:
            assert spikes is None


def test_a_neuron_kernel_that_fails_its_check_is_dropped_for_torch(monkeypatch, caplog):
    ek.warm()  # compiled and trusted ...
    monkeypatch.setattr(ek, "_state", {**ek._state, "lif": None})  # ... then checked again, broken:
    monkeypatch.setitem(ek._kernels, "lif", lambda x, o, lo, hi, *rest: 0)  # fires nothing
    x = _currents((4, 3, 4, 6), seed=5, fmt=torch.channels_last).view(2, 2, 3, 4, 6)
    cell = _cell()
    with caplog.at_level("WARNING", logger=ek.__name__):
        got, count = cell.forward_counted(x)
    assert count is None and torch.equal(got, cell._forward_torch(x))  # the frame is still right
    assert ek.kernel_status()["lif"] is False and "unusable" in caplog.text


def test_two_threads_firing_at_once_get_their_own_spikes():
    """Two engines in one ROS process run their neurons in two worker threads at once."""
    ek.warm()
    xs = [
        _currents((8, 16, 32, 32), seed=i, fmt=torch.channels_last).view(4, 2, 16, 32, 32) for i in range(2)
    ]
    cell = _cell()
    want = [cell._forward_torch(x) for x in xs]
    ok: dict[int, list[bool]] = {0: [], 1: []}

    def work(i: int) -> None:
        for _ in range(20):
            got, count = cell.forward_counted(xs[i])
            ok[i].append(torch.equal(got, want[i]) and count == int(want[i].sum()))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert ok == {0: [True] * 20, 1: [True] * 20}


@pytest.mark.parametrize("model", ["dhz", "spiking_unet"])
def test_engine_warm_up_readies_the_neuron_kernels_even_without_counting(model):
    """Both models' neurons run through the kernels whether or not they count, so a node that
    does not count still compiles (or loads) them while it configures, not on its first frame."""
    from snn_perception.runtime.engine import Engine, EngineConfig

    Engine.load(model, EngineConfig(count_ops=False)).warmup(hw=(32, 32))
    assert all(ek.kernel_status()[k] is True for k in nk.KINDS)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("v0", [None, 0.125])
@pytest.mark.parametrize("defer", [False, True])
@pytest.mark.parametrize("thresholds", [(2.0, 1.0, 0.5, 0.25), (0.5,)])
def test_multi_threshold_outputs_and_membranes_equal_torch(fmt, v0, defer, thresholds):
    z = _currents((8, 5, 7, 6), seed=11, fmt=FORMATS[fmt]) * 4
    z[0, 0, 0, 0], z[1, 1, 1, 1], z[2, 2, 2, 2] = float("nan"), float("inf"), -float("inf")
    steps = z.reshape(4, 2, 5, 7, 6)
    low, k_max = mt.binary_grid(thresholds)
    want = mt._grid_steps(steps, low, k_max, v0, False, defer)
    for inplace in (False, True, True):  # the in-place kernel: its checked first call, then plain
        currents = steps.clone()
        got = mt.mt_multistep(currents, thresholds, v0, inplace=inplace, defer_scale=defer)
        assert nk.same_values(got[0], want[0]) and nk.same_values(got[1], want[1])
        assert got[0].stride() == want[0].stride()
        if inplace:  # the outputs took the currents' memory, as the torch path's do
            assert got[0].data_ptr() == currents.data_ptr() and nk.same_values(currents, want[0])
        else:
            assert nk.same_values(currents, steps)  # untouched
    assert ek.kernel_status()["multi_threshold"] is ek.kernel_status()["multi_threshold_inplace"] is True


@pytest.mark.parametrize("fmt", FORMATS)
def test_multi_threshold_constant_current_equals_torch(fmt):
    z = _currents((2, 5, 7, 6), seed=12, fmt=FORMATS[fmt]) * 4
    thresholds = (2.0, 1.0, 0.5, 0.25)
    expanded = z.unsqueeze(0).expand(4, *z.shape)
    want = mt._grid_steps(expanded, 0.25, 15, 0.125, False, True)[0]
    for _ in range(2):
        got = mt.mt_constant(z, 4, thresholds, 0.125, defer_scale=True)
        assert torch.equal(got, want)
        assert got[0].stride() == z.stride()  # each step stored as the current is


def test_same_values_treats_nan_as_equal_to_nan_only():
    a = torch.tensor([1.0, float("nan"), float("inf"), -0.0])
    assert nk.same_values(a, a.clone()) and not torch.equal(a, a.clone())
    assert not nk.same_values(a, torch.tensor([1.0, 0.0, float("inf"), 0.0]))
    assert not nk.same_values(a, torch.tensor([1.0, float("nan"), 3.4e38, 0.0]))


def test_multi_threshold_leaves_a_membrane_tensor_to_torch():
    z = _currents((4, 3, 4, 6), seed=13, fmt=torch.contiguous_format).view(2, 2, 3, 4, 6)
    v0 = torch.full((2, 3, 4, 6), 0.125)
    want = mt._grid_steps(z, 0.25, 15, v0, False, False)
    got = mt.mt_multistep(z, (2.0, 1.0, 0.5, 0.25), v0)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert ek.kernel_status()["multi_threshold"] is None  # never tried


@pytest.mark.parametrize("steps", [1, 4])
@pytest.mark.parametrize("constant", [False, True])
def test_multi_threshold_counts_events_per_pixel_as_it_fires(steps, constant):
    """Channels-last: the events per pixel come with the outputs, which are then scaled (no
    counting pass follows); the map equals what the counting pass finds in the outputs."""
    z = _currents((2 if constant else 2 * steps, 6, 5, 7), seed=14, fmt=torch.channels_last) * 4
    thresholds = (2.0, 1.0, 0.5, 0.25)
    currents = z.unsqueeze(0).expand(steps, *z.shape) if constant else z.reshape(steps, 2, 6, 5, 7)
    want = mt._grid_steps(currents, 0.25, 15, None, False, False)[0]  # scaled
    for _ in range(2):
        events: list = []
        if constant:
            got = mt.mt_constant(z, steps, thresholds, defer_scale=True, events=events)
        else:
            got = mt.mt_multistep(
                currents.clone(), thresholds, inplace=True, defer_scale=True, events=events
            )[0]
        assert nk.same_values(got, want)
        (pixels,) = events
        assert pixels.shape == (5, 7) and pixels.dtype == np.float64
        np.testing.assert_array_equal(pixels, ek.events_per_pixel_torch(want.flatten(0, 1)).double().numpy())


def test_multi_threshold_leaves_planar_events_to_the_counting_pass():
    z = _currents((8, 6, 5, 7), seed=15, fmt=torch.contiguous_format) * 4
    events: list = []
    got = mt.mt_multistep(z.reshape(4, 2, 6, 5, 7), (2.0, 1.0, 0.5, 0.25), defer_scale=True, events=events)[0]
    assert events == []  # not counted here: the outputs stay in units of θ_min for that pass
    assert nk.same_values(got, mt._grid_steps(z.reshape(4, 2, 6, 5, 7), 0.25, 15, None, False, True)[0])
