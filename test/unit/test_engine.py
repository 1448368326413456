"""The runtime engine: loading by name or path, pre/post-processing, timesteps, stats, threads."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from snn_perception.models import registry
from snn_perception.models.counting import OpCounts
from snn_perception.models.dhz import SnnTransDHZ
from snn_perception.runtime import weights as weights_registry
from snn_perception.runtime.checkpoint import WeightsError, save_checkpoint
from snn_perception.runtime.engine import Engine, EngineConfig
from snn_perception.runtime.stats import EnergyModel


@pytest.fixture(scope="module")
def official_path(shared: Path) -> Path:
    return shared / "weights" / "snntrans_dhz_official_T4.pth"


@pytest.fixture(scope="module")
def engine(official_path: Path) -> Engine:
    return Engine.load(official_path)


@pytest.fixture(scope="module")
def reference(shared: Path) -> dict[str, np.ndarray]:
    ref = np.load(shared / "reference" / "dhz_official_outputs.npz")
    return {k: ref[k] for k in ref.files}


def test_info_describes_the_official_model(engine: Engine, official_path: Path) -> None:
    info = engine.info
    assert (info.task, info.arch, info.variant, info.default_timesteps) == (
        "dehaze",
        "snntrans_dhz",
        "official",
        4,
    )
    assert len(info.weights_id) == 12 and info.weights_path == str(official_path)


def test_default_weights_are_the_shipped_dhz_else_the_official_checkpoint(
    engine: Engine, monkeypatch, tmp_path: Path
) -> None:
    shipped = weights_registry.SHIPPED_DIR / "dhz.safetensors"
    if shipped.is_file():
        assert Engine.load().info.weights_path == str(shipped)
    monkeypatch.setattr(weights_registry, "SHIPPED_DIR", tmp_path)  # no shipped weights
    assert Engine.load().info.weights_id == engine.info.weights_id


def test_a_weights_file_is_shown_by_its_name_where_it_has_one(tmp_path: Path) -> None:
    shipped = weights_registry.SHIPPED_DIR / "dhz_v3.safetensors"
    assert weights_registry.name_for(shipped) == "dhz_v3"
    roundabout = weights_registry.SHIPPED_DIR / ".." / "weights" / shipped.name
    assert weights_registry.name_for(roundabout) == "dhz_v3"
    assert weights_registry.name_for(tmp_path / "mine.safetensors") == str(tmp_path / "mine.safetensors")


def test_no_default_weights_gives_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(weights_registry, "external_dirs", lambda: [tmp_path])
    monkeypatch.setattr(weights_registry, "SHIPPED_DIR", tmp_path)
    with pytest.raises(WeightsError, match="no dehaze weights available"):
        Engine.load()


def test_float_input_reproduces_the_official_output(engine: Engine, reference) -> None:
    result = engine.run(reference["input_0"].transpose(1, 2, 0))
    assert result.output.shape == (256, 256, 3) and result.output.dtype == np.float32
    assert np.abs(result.output - reference["output_0"].transpose(1, 2, 0)).max() <= 1e-4
    assert result.stats.timesteps == 4 and not result.stats.ops_counted


def test_uint8_input_is_scaled_to_unit_range(engine: Engine) -> None:
    img = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    a = engine.run(img).output
    b = engine.run(img.astype(np.float32) / 255).output
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_odd_size_output_has_the_input_size(engine: Engine) -> None:
    result = engine.run(np.zeros((37, 53, 3), np.uint8))
    assert result.output.shape == (37, 53, 3)
    assert result.stats.input_hw == (37, 53) and result.stats.model_hw == (40, 56)


def test_input_hw_resizes_and_returns_at_input_size(official_path: Path) -> None:
    e = Engine.load(official_path, EngineConfig(input_hw=(64, 64)))
    result = e.run(np.full((100, 80, 3), 90, np.uint8))
    assert result.output.shape == (100, 80, 3) and result.stats.model_hw == (64, 64)


@pytest.mark.parametrize("t", [0, 65, 2.5, True, "4"])
def test_timesteps_outside_1_to_64_are_rejected(engine: Engine, t) -> None:
    with pytest.raises(ValueError, match=r"1\.\.64"):
        engine.run(np.zeros((8, 8, 3), np.uint8), timesteps=t)


def test_config_validates_timesteps_and_device() -> None:
    with pytest.raises(ValueError, match=r"1\.\.64"):
        EngineConfig(timesteps=100)
    with pytest.raises(ValueError, match="device"):
        EngineConfig(device="tpu")


def test_timesteps_per_call_change_the_output(engine: Engine, reference) -> None:
    img = reference["input_2"].transpose(1, 2, 0)
    out8 = engine.run(img, timesteps=8)
    assert out8.stats.timesteps == 8
    assert np.abs(out8.output - reference["output_2"].transpose(1, 2, 0)).max() <= 1e-4
    assert np.abs(engine.run(img, timesteps=2).output - out8.output).max() > 1e-3


def test_bad_images_are_rejected(engine: Engine) -> None:
    with pytest.raises(ValueError, match="H×W×3"):
        engine.run(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        engine.run(np.zeros((8, 8, 3), np.int32))


def test_counting_fills_stats_with_energy(official_path: Path) -> None:
    e = Engine.load(
        official_path, EngineConfig(count_ops=True, energy=EnergyModel(e_ac_pj=1.0, e_mac_pj=2.0))
    )
    s = e.run(np.full((32, 32, 3), 100, np.uint8)).stats
    assert s.ops_counted and s.synaptic_ops > 0 and s.analog_macs > 0
    assert s.energy_j == pytest.approx((s.synaptic_ops + 2.0 * s.analog_macs) * 1e-12)
    assert len(s.layer_names) == len(s.layer_spike_rates) == 22
    assert not e.run(np.zeros((32, 32, 3), np.uint8), count_ops=False).stats.ops_counted


def test_unavailable_cuda_falls_back_to_cpu_with_a_warning(
    official_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    from snn_perception.runtime.notices import cli_messages

    with cli_messages("test"), caplog.at_level("WARNING", logger="snn_perception"):  # "once" restarts here
        e = Engine.load(official_path, EngineConfig(device="cuda"))
        Engine.load(official_path, EngineConfig(device="cuda"))  # said once, not per load
    assert e.device.type == "cpu"
    said = [r.getMessage() for r in caplog.records if "CUDA" in r.getMessage()]
    assert said == ["CUDA is not available; running on the CPU"]  # a log line, not a UserWarning


def test_run_in_one_thread_while_another_loads(engine: Engine, official_path: Path) -> None:
    img = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    expected = engine.run(img).output
    errors: list[BaseException] = []
    outputs: list[np.ndarray] = []

    def runner() -> None:
        try:
            for _ in range(5):
                outputs.append(engine.run(img).output)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    th = threading.Thread(target=runner)
    th.start()
    second = Engine.load(official_path)
    th.join()
    assert not errors
    assert all(np.array_equal(o, expected) for o in outputs)
    np.testing.assert_array_equal(second.run(img).output, expected)


def test_wrong_architecture_weights_give_weights_error(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    save_checkpoint(path, SnnTransDHZ().state_dict(), {"arch": "no_such_arch", "task": "dehaze"})
    with pytest.raises(WeightsError, match="no_such_arch"):
        Engine.load(path)


class _TinySegmenter(nn.Module):
    """A real (tiny) segmentation model to exercise the engine's segment task table."""

    size_multiple = 4

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        return self.conv(x) * timesteps

    def set_counting(self, enabled: bool) -> None:
        pass

    def read_counters(self) -> OpCounts:
        return OpCounts()


def test_segment_task_returns_class_ids_and_scores(tmp_path: Path) -> None:
    registry.register("test_tiny_segmenter", lambda meta: _TinySegmenter(meta["num_classes"]))
    model = _TinySegmenter(3)
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.bias.copy_(torch.tensor([0.0, 1.0, 0.5]))
    path = tmp_path / "seg.safetensors"
    meta = {
        "arch": "test_tiny_segmenter",
        "task": "segment",
        "num_classes": 3,
        "default_timesteps": 2,
        "class_names": ["a", "b", "c"],
        "class_colors": [[0, 0, 0], [255, 0, 0], [0, 255, 0]],
    }
    save_checkpoint(path, model.state_dict(), meta)
    e = Engine.load(path)
    assert e.info.task == "segment" and e.info.class_names == ("a", "b", "c") and e.info.num_classes == 3
    r = e.run(np.zeros((10, 7, 3), np.uint8))
    assert r.output.shape == (10, 7) and r.output.dtype == np.uint8 and (r.output == 1).all()
    assert r.scores is not None and r.scores.shape == (3, 10, 7) and r.scores.dtype == np.float32


def test_bf16_is_opt_in_and_close_to_the_exact_output(official_path: Path, reference) -> None:
    with pytest.raises(ValueError, match="precision"):
        EngineConfig(precision="fp16")
    img = reference["input_0"].transpose(1, 2, 0)
    exact = Engine.load(official_path).run(img).output
    fast = Engine.load(official_path, EngineConfig(precision="bf16")).run(img).output
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    mse = float(np.mean((np.clip(fast, 0, 1) - np.clip(exact, 0, 1)) ** 2))
    assert mse > 0  # really a different arithmetic…
    assert 10 * np.log10(1 / mse) > 40  # …but close: ≈50 dB on this image


def test_allocator_tuning_applies_on_glibc() -> None:
    import platform

    from snn_perception.runtime.engine import tune_allocator

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt tuning is glibc-only")
    assert tune_allocator() is True


def test_warmup_runs_without_counting(official_path: Path) -> None:
    e = Engine.load(official_path, EngineConfig(input_hw=(32, 32), count_ops=True))
    e.warmup()
    assert e.run(np.zeros((32, 32, 3), np.uint8)).stats.ops_counted


def test_paper_variant_checkpoint_runs_through_the_engine(tmp_path: Path, official_path: Path) -> None:
    from snn_perception.runtime.checkpoint import load_checkpoint

    state = load_checkpoint(official_path).state_dict
    path = tmp_path / "paper.safetensors"
    save_checkpoint(path, state, {"arch": "snntrans_dhz", "variant": "paper", "task": "dehaze"})
    paper = Engine.load(path)
    assert paper.info.variant == "paper" and paper.model.cfg.variant == "paper"
    img = np.random.default_rng(2).integers(0, 256, (40, 24, 3), dtype=np.uint8)
    out = paper.run(img).output
    assert out.shape == (40, 24, 3) and np.isfinite(out).all()
    assert not np.allclose(out, Engine.load(official_path).run(img).output)


def test_float_to_uint8_clips_and_rounds() -> None:
    from snn_perception.runtime.preprocess import float_to_uint8

    out = float_to_uint8(np.array([[[-0.5, 0.5, 1.7]]], np.float32))
    assert out.dtype == np.uint8 and out.tolist() == [[[0, 128, 255]]]


@pytest.mark.parametrize(
    "text,expected", [("512", (512, 512)), ("480x640", (480, 640)), ("240×320", (240, 320))]
)
def test_sizes_parse_as_n_or_h_by_w(text: str, expected: tuple[int, int]) -> None:
    from snn_perception.runtime.preprocess import parse_hw

    assert parse_hw(text) == expected


@pytest.mark.parametrize(
    "text,words",
    [
        ("512x", "expected N or HxW"),
        ("axb", "expected N or HxW"),
        ("0x64", "positive"),
        ("9000", "at most 8192"),
    ],
)
def test_bad_sizes_say_what_is_accepted(text: str, words: str) -> None:
    from snn_perception.runtime.preprocess import parse_hw

    with pytest.raises(ValueError, match=words):
        parse_hw(text)


def test_config_errors_name_the_setting_not_the_class() -> None:
    with pytest.raises(ValueError, match=r"^device must be 'cpu', 'cuda' or 'auto', got 'gpu'"):
        EngineConfig(device="gpu")
    with pytest.raises(ValueError, match=r"^model size \(H, W\) must have H, W ≥ 8"):
        EngineConfig(input_hw=(1, 1))


def test_a_named_task_refuses_weights_of_the_other_task_before_building() -> None:
    from snn_perception.runtime.engine import WrongTaskError

    msg = r"holds a segment model \(spiking_lite_unet\), not a dehaze model"
    with pytest.raises(WrongTaskError, match=msg) as err:
        Engine.load("spiking_unet", task="dehaze")
    assert (err.value.found, err.value.expected) == ("segment", "dehaze")
    assert Engine.load("spiking_unet").info.task == "segment"  # no task named: loads as is
