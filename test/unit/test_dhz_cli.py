"""``snn-perception enhance`` and ``bench`` end to end, including bad input (exit code 2)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli

from snn_perception.cli import main
from snn_perception.runtime.engine import Engine

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def euvp(shared: Path) -> list[Path]:
    return sorted((shared / "data" / "euvp_test23" / "raw").glob("*.jpg"))[:2]


def test_enhance_writes_pngs_floats_and_stats(euvp: list[Path], tmp_path: Path, shared: Path) -> None:
    out, js = tmp_path / "out", tmp_path / "stats.json"
    rc = main(
        ["enhance", *map(str, euvp), "--out", str(out), "--save-float", "--json", str(js), "--timesteps", "2"]
    )
    assert rc == 0
    for src in euvp:
        png = cv2.imread(str(out / f"{src.stem}.png"))
        assert png is not None and png.shape == cv2.imread(str(src)).shape
        arr = np.load(out / f"{src.stem}.npy")
        assert arr.dtype == np.float32 and arr.shape == (3, *png.shape[:2])
    rgb = cv2.cvtColor(cv2.imread(str(euvp[0])), cv2.COLOR_BGR2RGB)
    expected = Engine.load().run(rgb, timesteps=2).output  # enhance uses the default weights
    np.testing.assert_allclose(np.load(out / f"{euvp[0].stem}.npy"), expected.transpose(2, 0, 1), atol=1e-6)
    doc = json.loads(js.read_text())
    assert len(doc["images"]) == 2 and doc["weights"]["arch"] == "snntrans_dhz"
    stats = doc["images"][0]["stats"]
    assert stats["timesteps"] == 2 and stats["ops_counted"] and stats["energy_j"] > 0


def test_enhance_folder_with_odd_sized_image(tmp_path: Path, shared: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    img = np.random.default_rng(0).integers(0, 256, (45, 61, 3), dtype=np.uint8)
    cv2.imwrite(str(folder / "odd.png"), img)
    assert main(["enhance", str(folder), "--out", str(tmp_path / "o"), "--timesteps", "1"]) == 0
    assert cv2.imread(str(tmp_path / "o" / "odd.png")).shape == (45, 61, 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["does_not_exist.png"], "does not exist"),
        (["{img}", "--timesteps", "0"], "1..64"),
        (["{img}", "--size", "big"], "size"),
        (["{img}", "--weights", "/nonexistent/w.pth"], "no such file or shipped name"),
        (["{empty}"], "holds no images"),
        (["{txt}"], "not an image"),
    ],
)
def test_enhance_bad_input_exits_2_with_a_message(
    tmp_path: Path, capsys, args: list[str], message: str
) -> None:
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    fill = {"img": str(img), "empty": str(tmp_path / "empty"), "txt": str(tmp_path / "notes.txt")}
    argv = ["enhance", *(a.format(**fill) for a in args), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_enhance_unreadable_image_fails_cleanly_in_a_subprocess(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    weights = tmp_path / "missing.pth"
    result = cli("enhance", bad, "--out", tmp_path / "o", "--weights", weights, cwd=REPO, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "missing.pth" in result.stderr


def test_bench_reports_latency_and_energy(shared: Path, tmp_path: Path, capsys) -> None:
    js = tmp_path / "bench.json"
    argv = [
        "bench",
        "--size",
        "32",
        "--timesteps",
        "1",
        "2",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--json",
        str(js),
    ]
    assert main(argv) == 0
    rows = json.loads(js.read_text())["rows"]
    assert [(r["timesteps"], r["stats"]) for r in rows] == [(1, False), (1, True), (2, False), (2, True)]
    assert all(r["median_ms"] > 0 and r["peak_rss_mib"] > 0 for r in rows)
    assert rows[3]["energy_uj"] > rows[1]["energy_uj"] > 0  # more steps, more operations
    assert "counting costs" in capsys.readouterr().out


def test_bench_alternates_counting_off_and_on_after_both_warm_ups() -> None:
    """Both medians must see the same machine conditions (a VM's speed drifts over seconds)."""
    from snn_perception.commands.bench import _time_runs
    from snn_perception.runtime.engine import Engine

    engine = Engine.load("dhz")
    order: list[bool] = []
    real_run = engine.run

    def run(image, timesteps=None, count_ops=None):
        order.append(count_ops)
        return real_run(image, timesteps=timesteps, count_ops=count_ops)

    engine.run = run
    image = np.full((16, 16, 3), 100, np.uint8)
    measured = _time_runs(engine, image, 1, (False, True), runs=3, warmup=1)
    assert order == [False, True, False, True, True, False, False, True]
    assert [len(measured[c][0]) for c in (False, True)] == [3, 3]
    assert measured[True][1].ops_counted and not measured[False][1].ops_counted


def test_bench_and_enhance_count_the_same_operations_at_one_size(euvp: list[Path], tmp_path: Path) -> None:
    # both make the model's input with the engine's resize, so a number from one matches the other
    bench_js, enhance_js = tmp_path / "b.json", tmp_path / "e.json"
    common = ["--timesteps", "2", "--threads", "1"]
    assert (
        main(
            [
                "bench",
                "--size",
                "48x64",
                "--image",
                str(euvp[0]),
                "--runs",
                "1",
                "--warmup",
                "0",
                "--json",
                str(bench_js),
                *common,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "enhance",
                str(euvp[0]),
                "--out",
                str(tmp_path / "o"),
                "--size",
                "48x64",
                "--json",
                str(enhance_js),
                *common,
            ]
        )
        == 0
    )
    bench = next(r for r in json.loads(bench_js.read_text())["rows"] if r["stats"])
    enhanced = json.loads(enhance_js.read_text())["images"][0]["stats"]
    for key in ("synaptic_ops", "analog_macs"):
        assert bench[key] == enhanced[key], key
    assert bench["energy_uj"] == pytest.approx(enhanced["energy_j"] * 1e6, rel=1e-9)


def test_bench_unknown_model_exits_2(capsys) -> None:
    assert main(["bench", "--model", "nope"]) == 2
    assert "known models" in capsys.readouterr().err
