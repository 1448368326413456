"""``snn-perception average``: the uniform weight average of checkpoints, and what it refuses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
from cli_run import cli

from snn_perception.models import registry
from snn_perception.offline.soup import average, average_checkpoints
from snn_perception.runtime.checkpoint import WeightsError, load_checkpoint, save_checkpoint

META = {"arch": "snntrans_dhz", "task": "dehaze", "variant": "official", "default_timesteps": 4}


def _ckpt(path: Path, seed: int, **meta) -> Path:
    torch.manual_seed(seed)
    model = registry.build("snntrans_dhz", META)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    training = {"data": ["pairs"], "val_fraction": 0.2, "seed": 0, "val_images": ["a.jpg"]}
    save_checkpoint(
        path,
        model.state_dict(),
        {**META, "training": training, "metrics": {"val_loss": seed}, "command": f"run {seed}", **meta},
    )
    return path


def _cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return cli("average", *args, cwd=cwd)


def test_average_is_the_mean_and_loads_into_the_network(tmp_path: Path) -> None:
    paths = [_ckpt(tmp_path / f"{i}.safetensors", i) for i in range(3)]
    state, meta = average_checkpoints(paths)
    parts = [load_checkpoint(p).state_dict for p in paths]
    key = "H_est.up1_Hx.weight"
    torch.testing.assert_close(state[key], (parts[0][key] + parts[1][key] + parts[2][key]) / 3)
    counter = next(k for k in state if k.endswith("num_batches_tracked"))
    assert state[counter].dtype == torch.int64 and torch.equal(state[counter], parts[0][counter])
    assert "metrics" not in meta and "command" not in meta  # they described one run
    assert meta["training"]["val_images"] == ["a.jpg"] and meta["average"]["notes"] == []
    assert [item["command"] for item in meta["average"]["of"]] == ["run 0", "run 1", "run 2"]
    registry.build("snntrans_dhz", meta).load_state_dict(state)


def test_coefficients_give_a_weighted_mean_and_bad_ones_are_refused(tmp_path: Path) -> None:
    ckpts = [load_checkpoint(_ckpt(tmp_path / f"{i}.safetensors", i)) for i in range(2)]
    state, meta = average(ckpts, [0.75, 0.25])
    key = "H_est.up1_Hx.weight"
    a, b = (ck.state_dict[key] for ck in ckpts)
    torch.testing.assert_close(state[key], 0.75 * a + 0.25 * b)
    assert meta["average"]["method"] == "weighted" and meta["average"]["coefficients"] == [0.75, 0.25]
    assert torch.equal(average(ckpts, [1.0, 0.0])[0][key], a)
    for bad in ([0.5], [0.7, 0.7], [1.5, -0.5]):
        with pytest.raises(WeightsError, match="2 numbers ≥ 0 that sum to 1"):
            average(ckpts, bad)


def test_other_split_is_noted(tmp_path: Path) -> None:
    a = _ckpt(tmp_path / "a.safetensors", 0)
    b = _ckpt(tmp_path / "b.safetensors", 1, training={"data": ["other"], "val_fraction": 0.2, "seed": 0})
    _, meta = average_checkpoints([a, b])
    assert len(meta["average"]["notes"]) == 1 and "b.safetensors" in meta["average"]["notes"][0]


def test_other_network_is_refused_naming_the_file(tmp_path: Path) -> None:
    a = _ckpt(tmp_path / "a.safetensors", 0)
    b = _ckpt(tmp_path / "b.safetensors", 1, variant="paper")
    with pytest.raises(WeightsError, match=r"b\.safetensors: variant 'paper' differs"):
        average_checkpoints([a, b])
    with pytest.raises(WeightsError, match="at least two"):
        average_checkpoints([a])


def test_cli_writes_the_average_with_its_provenance(tmp_path: Path) -> None:
    _ckpt(tmp_path / "a.safetensors", 0)
    _ckpt(tmp_path / "b.safetensors", 1)
    proc = _cli("--weights", "a.safetensors", "b.safetensors", "--out", "soup/avg.safetensors", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    meta = load_checkpoint(tmp_path / "soup" / "avg.safetensors").metadata
    assert meta["command"].startswith("snn-perception average --weights a.safetensors b.safetensors")
    assert len(meta["average"]["of"]) == 2


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--weights", "a.safetensors", "b.safetensors", "--out", "a.safetensors"], ["also an input"]),
        (["--weights", "a.safetensors", "b.safetensors", "--out", "x.pt"], ["must end in .safetensors"]),
        (["--weights", "a.safetensors", "nope.safetensors", "--out", "x.safetensors"], ["nope.safetensors"]),
        (["--weights", "a.safetensors", "--out", "x.safetensors"], ["at least two"]),
        (
            ["--weights", "a.safetensors", "a.safetensors", "--out", "x.safetensors"],
            ["the same weights as a.safetensors", "once"],
        ),
        (
            ["--weights", "a.safetensors", "b.safetensors", "u.safetensors", "--out", "new/x.safetensors"],
            ["u.safetensors", "arch"],
        ),
        (
            ["--weights", "a.safetensors", "b.safetensors", "--out", "old.safetensors"],
            ["already exists", "--overwrite"],
        ),
    ],
)
def test_cli_refuses_bad_input_and_writes_nothing(tmp_path: Path, argv: list[str], words: list[str]) -> None:
    _ckpt(tmp_path / "a.safetensors", 0)
    _ckpt(tmp_path / "b.safetensors", 1)
    unet = {"arch": "spiking_unet", "task": "segment"}
    save_checkpoint(tmp_path / "u.safetensors", {"w": torch.zeros(2)}, unet)
    (tmp_path / "old.safetensors").write_bytes(b"keep")
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    proc = _cli(*argv, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_greedy_soup_keeps_only_members_that_improve_the_average(tmp_path: Path) -> None:
    from snn_perception.offline.soup import greedy_soup

    key = "H_est.up1_Hx.bias"
    paths = [_ckpt(tmp_path / f"{i}.safetensors", i) for i in range(4)]
    values = [load_checkpoint(p).state_dict[key] for p in paths]
    # the score is the distance to a target that only the mean of checkpoints 0 and 2 reaches
    target = (values[0] + values[2]) / 2

    def score(state: dict, _meta: dict) -> float:
        return float((state[key] - target).abs().sum())

    log: list[dict] = []
    soup, best = greedy_soup(paths, score, log=log.append)
    assert sorted(map(str, soup)) == sorted(map(str, [paths[0], paths[2]]))
    assert best == pytest.approx(0.0, abs=1e-5)
    assert sum("candidate" in row for row in log) == 4 and sum("try" in row for row in log) == 3
    single = [row["score"] for row in log if "candidate" in row]
    assert log[4]["try"][0] == str(paths[single.index(min(single))])  # starts from the best alone


def test_greedy_soup_checks_every_candidate_before_scoring_any(tmp_path: Path) -> None:
    from snn_perception.offline.soup import greedy_soup

    a, b = _ckpt(tmp_path / "a.safetensors", 0), _ckpt(tmp_path / "b.safetensors", 1)
    save_checkpoint(tmp_path / "u.safetensors", {"w": torch.zeros(2)}, {"arch": "spiking_unet"})
    scored: list[int] = []
    for paths, words in (([a, b, tmp_path / "u.safetensors"], "arch"), ([a, b, a], "the same weights")):
        with pytest.raises(WeightsError, match=words):
            greedy_soup(paths, lambda *_: scored.append(1) or 0.0)
    assert not scored
