"""Safe weights loading: our safetensors format, official state dicts, and every bad file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from snn_perception.models.dhz import SnnTransDHZ
from snn_perception.runtime import weights as weights_registry
from snn_perception.runtime.checkpoint import (
    WeightsError,
    load_checkpoint,
    load_into,
    load_training_state,
    save_checkpoint,
    save_training_state,
    sha256_file,
)

META = {
    "arch": "snntrans_dhz",
    "variant": "paper",
    "default_timesteps": 4,
    "task": "dehaze",
    "training": {"data": "lsui_pairs", "epochs": 1},
    "metrics": {"psnr": 20.5},
}


@pytest.fixture(scope="module")
def dhz_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return SnnTransDHZ().state_dict()


@pytest.fixture()
def saved(tmp_path: Path, dhz_state) -> Path:
    path = tmp_path / "dhz.safetensors"
    save_checkpoint(path, dhz_state, META)
    return path


def test_round_trip_keeps_tensors_metadata_and_hash(saved: Path, dhz_state) -> None:
    ckpt = load_checkpoint(saved)
    assert ckpt.metadata["arch"] == "snntrans_dhz" and ckpt.metadata["metrics"] == {"psnr": 20.5}
    assert ckpt.sha256 == sha256_file(saved) and len(ckpt.weights_id) == 12
    assert set(ckpt.state_dict) == set(dhz_state)
    assert all(torch.equal(ckpt.state_dict[k], v) for k, v in dhz_state.items())
    model = SnnTransDHZ()
    load_into(model, ckpt)


def test_save_returns_the_file_hash(tmp_path: Path, dhz_state) -> None:
    digest = save_checkpoint(tmp_path / "a.safetensors", dhz_state, META)
    assert digest == sha256_file(tmp_path / "a.safetensors")


def test_saved_weights_get_the_mode_of_any_new_file(tmp_path: Path, dhz_state) -> None:
    # safetensors alone writes 0600: a node running as another user could not read the weights
    import os

    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "a.safetensors", dhz_state, {"arch": "snntrans_dhz"})
        os.umask(0o027)
        save_checkpoint(tmp_path / "b.safetensors", dhz_state, {"arch": "snntrans_dhz"})
    finally:
        os.umask(old)
    assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.safetensors").stat().st_mode & 0o777 == 0o640


def test_save_requires_an_architecture(tmp_path: Path, dhz_state) -> None:
    with pytest.raises(ValueError, match="arch"):
        save_checkpoint(tmp_path / "a.safetensors", dhz_state, {"variant": "x"})


def test_official_state_dict_is_recognised(tmp_path: Path, dhz_state) -> None:
    path = tmp_path / "official.pth"
    torch.save(dict(dhz_state), path)
    ckpt = load_checkpoint(path)
    assert ckpt.metadata["arch"] == "snntrans_dhz" and ckpt.metadata["variant"] == "official"
    assert ckpt.metadata["default_timesteps"] == 4


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found") as info:
        load_checkpoint(tmp_path / "nope.safetensors")
    assert "nope.safetensors" in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.pth").write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        load_checkpoint(tmp_path / "e.pth")


def test_truncated_safetensors(saved: Path) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=saved.name):
        load_checkpoint(saved)


def test_truncated_torch_file(tmp_path: Path, dhz_state) -> None:
    path = tmp_path / "t.pth"
    torch.save(dict(dhz_state), path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(WeightsError, match=r"t\.pth"):
        load_checkpoint(path)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_corrupt_bytes(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(WeightsError, match=f"junk{suffix}"):
        load_checkpoint(path)


def test_safetensors_without_our_metadata(tmp_path: Path, dhz_state) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in dhz_state.items()}, str(path))
    with pytest.raises(WeightsError, match="metadata"):
        load_checkpoint(path)


def test_unrecognised_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(WeightsError, match="unrecognised"):
        load_checkpoint(path)


def test_state_dict_with_non_tensors(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pth"
    torch.save({"a": torch.zeros(1), "b": 3}, path)
    with pytest.raises(WeightsError, match="not tensors"):
        load_checkpoint(path)


def test_wrong_architecture_is_refused(saved: Path) -> None:
    with pytest.raises(WeightsError, match="expected 'spiking_unet'"):
        load_checkpoint(saved, expect_arch="spiking_unet")


def test_weights_that_do_not_fit_the_architecture(tmp_path: Path, dhz_state) -> None:
    state = dict(dhz_state)
    state.pop("H_est.up3_Hx.bias")
    state["spikecode_rgb.conv1.weight"] = torch.zeros(8, 3, 3, 3)
    path = tmp_path / "broken.safetensors"
    save_checkpoint(path, state, META)
    with pytest.raises(WeightsError, match=r"broken\.safetensors.*do not fit"):
        load_into(SnnTransDHZ(), load_checkpoint(path))


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_code_running_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    raw = tmp_path / "evil_raw.pth"
    raw.write_bytes(pickle.dumps({"spikecode_rgb.conv1.weight": _Evil(marker)}))
    zipped = tmp_path / "evil_zip.pth"
    torch.save({"w": _Evil(marker)}, zipped)
    cases = ((raw, "not a weights-only torch file"), (zipped, r"refused: it holds Python objects \(posix"))
    for path, words in cases:
        with pytest.raises(WeightsError, match=words) as info:
            load_checkpoint(path)
        assert "\n" not in str(info.value) and "\x1b" not in str(info.value), "one plain line"
    junk = tmp_path / "junk.pth"
    junk.write_bytes(bytes(range(7, 200)))
    with pytest.raises(WeightsError, match="not a weights-only torch file"):
        load_checkpoint(junk)
    with pytest.raises(WeightsError):
        load_training_state(zipped)
    assert not marker.exists()


def test_training_state_round_trip(tmp_path: Path) -> None:
    state = {"epoch": 3, "optimizer": {"lr": 1e-3, "exp_avg": [torch.ones(2)]}, "name": "run1"}
    save_training_state(tmp_path / "s.pt", state)
    back = load_training_state(tmp_path / "s.pt")
    assert back["epoch"] == 3 and torch.equal(back["optimizer"]["exp_avg"][0], torch.ones(2))


def test_unknown_weights_name_lists_what_is_available() -> None:
    with pytest.raises(WeightsError, match="available names"):
        weights_registry.resolve("no_such_weights")


def test_a_folder_given_as_weights_says_a_file_is_expected(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="is a folder; give a weights file"):
        weights_registry.resolve(str(tmp_path))


def test_external_name_resolves_from_the_weights_dir(tmp_path: Path, monkeypatch, dhz_state) -> None:
    torch.save(dict(dhz_state), tmp_path / "snntrans_dhz_official_T4.pth")
    monkeypatch.setenv("SNN_WEIGHTS_DIR", str(tmp_path))
    assert weights_registry.resolve("dhz_official") == tmp_path / "snntrans_dhz_official_T4.pth"
    assert "dhz_official" in weights_registry.available()
