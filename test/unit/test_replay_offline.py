"""Offline replay: numbers equal `enhance`, one row per frame, drop accounting, Ctrl-C, bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_run import cli, cold_cli

from snn_perception.models import registry
from snn_perception.models.counting import OpCounts
from snn_perception.offline import metrics
from snn_perception.replay import bag_io
from snn_perception.replay.bag_io import BagWriter
from snn_perception.replay.common import ReplayConfig
from snn_perception.replay.make_bag import make_bag
from snn_perception.replay.offline import _Queue, load_engines, run_offline
from snn_perception.replay.report import write_report
from snn_perception.replay.summary import summarize
from snn_perception.runtime.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine spinning OpenMP workers cost far more than they give."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def weights(shared: Path) -> str:
    return str(shared / "weights" / "snntrans_dhz_official_T4.pth")


@pytest.fixture(scope="module")
def euvp_bag(shared: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("euvp") / "bag"
    make_bag(shared / "data" / "euvp_test23" / "raw", out, rate_hz=10.0, storage="mcap", start_ns=10**9)
    return out


@pytest.fixture(scope="module")
def euvp_bag_6(shared: Path, tmp_path_factory) -> Path:
    """The first 6 EUVP frames: for the checks of how runs are made, not of what all 23 score."""
    folder = tmp_path_factory.mktemp("euvp6")
    for frame in sorted((shared / "data" / "euvp_test23" / "raw").iterdir())[:6]:
        (folder / frame.name).symlink_to(frame)
    make_bag(folder, folder / "bag", rate_hz=10.0, storage="mcap", start_ns=10**9)
    return folder / "bag"


@pytest.fixture(scope="module")
def engines(weights: str):
    return load_engines(ReplayConfig(bag=Path("."), out=Path("."), dehaze_weights=weights))


def _config(bag: Path, out: Path, **kw) -> ReplayConfig:
    kw.setdefault("progress", False)
    return ReplayConfig(bag=bag, out=out, mode="offline", **kw)


def test_per_frame_psnr_equals_the_enhance_command(euvp_bag, engines, weights, shared, tmp_path) -> None:
    from snn_perception.cli import main

    result = run_offline(_config(euvp_bag, tmp_path, rate=None, nr_metrics=False), engines)
    (run,) = result.runs
    assert len(run.rows) == 23 and all(r["status"] == "ok" for r in run.rows)
    assert result.topics.reference == "/camera/reference"

    assert (
        main(
            [
                "enhance",
                str(shared / "data" / "euvp_test23" / "raw"),
                "--out",
                str(tmp_path / "enh"),
                "--weights",
                weights,
                "--threads",
                "1",
            ]
        )
        == 0
    )
    from snn_perception.offline.pairs import read_rgb
    from snn_perception.replay.make_bag import find_frames

    frames, refs = find_frames(shared / "data" / "euvp_test23" / "raw")
    for row, path in zip(run.rows, frames, strict=True):
        ref = read_rgb(refs[path.stem])
        expected = metrics.psnr(read_rgb(tmp_path / "enh" / f"{path.stem}.png"), ref)
        assert row["psnr_out"] == pytest.approx(expected, abs=0.01), path.name
        assert row["psnr_raw"] == pytest.approx(metrics.psnr(read_rgb(path), ref), abs=1e-9)


def test_timestep_sweep_gives_one_run_per_t_with_rising_cost(euvp_bag_6, engines, tmp_path) -> None:
    result = run_offline(
        _config(euvp_bag_6, tmp_path, rate=None, timesteps=(1, 4), nr_metrics=False, samples=2), engines
    )
    assert [r.label for r in result.runs] == ["T=1", "T=4"]
    s1, s4 = (summarize(r, None)["dehaze"] for r in result.runs)
    assert s1["timesteps"] == 1 and s4["timesteps"] == 4
    assert s4["energy_per_frame_j"] > 2 * s1["energy_per_frame_j"] > 0
    assert s4["synaptic_ops_per_frame"] > s1["synaptic_ops_per_frame"]
    assert len(result.runs[1].samples) == 2 and result.runs[1].samples[0].enhanced is not None


def test_queue_keeps_only_the_newest_frame() -> None:
    q = _Queue()
    assert q.accepts(0.0, 0.1, paced=True)  # idle worker: takes frame 0 at once
    q.busy_until = 0.25  # frame 0 takes 250 ms
    assert not q.accepts(0.1, 0.2, paced=True)  # overwritten by 0.2 before the worker is free
    assert q.accepts(0.2, 0.3, paced=True)  # newest arrived at 0.25
    assert q.accepts(0.3, None, paced=True)  # the last frame is never overwritten
    assert q.accepts(0.1, 0.2, paced=False)


def _fast_bag(path: Path, n: int, period_ns: int, hw=(48, 64), bad: tuple[int, ...] = ()) -> Path:
    rng = np.random.default_rng(0)
    store = bag_io.typestore()
    with BagWriter(path) as bag:
        for i in range(n):
            stamp = 10**9 + i * period_ns
            if i in bad:
                bag.add_topic("/camera/image/compressed", bag_io.COMPRESSED_TYPE)
                msg = store.types[bag_io.COMPRESSED_TYPE](
                    header=bag_io._header(stamp, "c"), format="jpeg", data=np.frombuffer(b"garbage", np.uint8)
                )
                bag.write("/camera/image/compressed", msg, stamp)
            else:
                bag.write_image(
                    "/camera/image/compressed",
                    rng.integers(0, 256, (*hw, 3), np.uint8),
                    stamp,
                    compressed="jpeg",
                )
    return path


def test_real_time_pacing_drops_frames_and_the_accounting_adds_up(engines, tmp_path) -> None:
    bag = _fast_bag(tmp_path / "bag", 12, 2_000_000, bad=(3,))  # 500 Hz: far faster than the model
    result = run_offline(_config(bag, tmp_path / "out", rate=1.0, nr_metrics=False), engines)
    rows = result.runs[0].rows
    assert len(rows) == 12
    status = [r["status"] for r in rows]
    assert status[3] == "undecodable" and status[-1] == "ok"
    s = summarize(result.runs[0], 1.0)["dehaze"]
    assert s["processed"] + s["dropped"] + s["undecodable"] == 12
    assert s["dropped"] > 0 and s["undecodable"] == 1
    assert s["drop_rate"] == pytest.approx(s["dropped"] / 11)
    for r in rows:
        assert ("end_to_end_ms" in r) == (r["status"] == "ok")
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(r["end_to_end_ms"] >= r["engine_ms"] - 1e-6 for r in ok)


def test_slow_bag_at_real_time_drops_nothing(engines, tmp_path) -> None:
    bag = _fast_bag(tmp_path / "bag", 4, 2_000_000_000)  # 0.5 Hz
    result = run_offline(_config(bag, tmp_path / "out", rate=1.0, nr_metrics=False), engines)
    rows = result.runs[0].rows
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert all(r["queue_wait_ms"] == 0.0 for r in rows)
    assert "no reference topic" in " ".join(result.notes)
    assert all("uiqm_out" not in r for r in rows)


def test_ctrl_c_writes_a_partial_report(engines, euvp_bag, tmp_path) -> None:
    engine = engines["dehaze"]

    class InterruptAfter:
        """The real engine, with a Ctrl-C arriving during the fifth frame."""

        def __init__(self, inner, n: int) -> None:
            self.inner, self.n, self.info = inner, n, inner.info

        def warmup(self) -> None:
            self.inner.warmup()

        def run(self, *a, **k):
            self.n -= 1
            if self.n == 0:
                raise KeyboardInterrupt
            return self.inner.run(*a, **k)

    cfg = _config(euvp_bag, tmp_path, rate=None, timesteps=(1, 2), nr_metrics=False)
    result = run_offline(cfg, {"dehaze": InterruptAfter(engine, 5)})
    assert result.interrupted and len(result.runs) == 1 and len(result.runs[0].rows) == 4
    files = write_report(result, tmp_path)
    doc = json.loads(files.json.read_text())
    assert doc["partial"] is True and doc["summary"][0]["interrupted"] is True
    assert "Partial report" in files.html.read_text()


# -- bad input through the CLI -----------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return cli("replay", *args, cwd=REPO, timeout=300)


def _assert_usage_error(res: subprocess.CompletedProcess, text: str) -> None:
    assert res.returncode == 2, res.stderr
    assert text in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_bad_input_gives_a_message_and_exit_code_2(euvp_bag, tmp_path) -> None:
    _assert_usage_error(_cli(str(tmp_path / "nope"), "--mode", "offline"), "does not exist")
    _assert_usage_error(
        _cli(str(euvp_bag), "--mode", "offline", "--topic", "/cam"),
        "topics in the bag: /camera/image [sensor_msgs/msg/Image, 23 msgs], /camera/reference",
    )
    _assert_usage_error(_cli(str(euvp_bag), "--mode", "offline", "--timesteps", "1,x"), "--timesteps")
    _assert_usage_error(
        _cli(str(euvp_bag), "--mode", "offline", "--mask-topic", "/camera/reference", "--out", str(tmp_path)),
        "mask topic /camera/reference holds colour images",
    )
    other = tmp_path / "other"
    with BagWriter(other) as bag:
        bag.add_topic("/camera/image", "std_msgs/msg/String")
        bag.write("/camera/image", bag_io.typestore().types["std_msgs/msg/String"](data="x"), 1)
    _assert_usage_error(
        _cli(str(other), "--mode", "offline", "--topic", "/camera/image"),
        "has type std_msgs/msg/String; expected sensor_msgs/msg/Image",
    )
    meta = other / "metadata.yaml"
    meta.write_text(meta.read_text().replace("storage_identifier: sqlite3", "storage_identifier: bag1"))
    _assert_usage_error(_cli(str(other), "--mode", "offline"), "storage format 'bag1' is not supported")


def test_undecodable_frames_are_counted_in_the_cli_report(weights, tmp_path) -> None:
    bag = _fast_bag(tmp_path / "bag", 3, 500_000_000, bad=(1,))
    res = _cli(
        str(bag),
        "--mode",
        "offline",
        "--weights",
        weights,
        "--out",
        str(tmp_path / "out"),
        "--as-fast-as-possible",
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    d = doc["summary"][0]["dehaze"]
    assert (d["processed"], d["undecodable"], d["dropped"]) == (2, 1, 0)
    assert "neither JPEG nor PNG" in doc["runs"][0]["frames"][1]["error"]


def test_a_second_replay_into_the_same_out_needs_overwrite(weights, tmp_path) -> None:
    bag = _fast_bag(tmp_path / "bag", 2, 500_000_000)
    out = tmp_path / "out"
    args = (str(bag), "--mode", "offline", "--weights", weights, "--no-segment", "--out", str(out))
    res = _cli(*args, "--as-fast-as-possible", "--timesteps", "1,2")
    assert res.returncode == 0, res.stderr
    assert (out / "tradeoff.png").exists(), "a sweep draws the trade-off curve"
    first = (out / "report.json").read_bytes()
    (out / "notes.txt").write_text("mine")
    _assert_usage_error(_cli(*args, "--as-fast-as-possible"), "pass --overwrite to replace it")
    assert (out / "report.json").read_bytes() == first, "a refused replay left the earlier report alone"
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    failed = _cli(*args, "--as-fast-as-possible", "--overwrite", "--topic", "/not/in/the/bag")
    assert failed.returncode == 2 and "/not/in/the/bag" in failed.stderr, failed.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before, "a failed --overwrite kept all"
    assert (out / "report.json").read_bytes() == first
    res = _cli(*args, "--as-fast-as-possible", "--overwrite")
    assert res.returncode == 0, res.stderr
    assert len(json.loads((out / "report.json").read_text())["runs"]) == 1
    assert not (out / "tradeoff.png").exists(), "no stale plot of the earlier sweep is left behind"
    assert (out / "notes.txt").read_text() == "mine", "files the replay did not write are kept"
    assert not list(out.glob(".previous-report-*")), "the set-aside report is deleted"


def test_demo_never_deletes_what_it_did_not_write(tmp_path) -> None:
    bag = tmp_path / "dive_bag"
    bag.mkdir()
    (bag / "notes.txt").write_text("mine")
    (tmp_path / "file").write_text("x")
    cases = ((tmp_path, "holds files a demo did not write (notes.txt)"), (tmp_path / "file", "is a file"))
    for out, words in cases:
        res = cli("demo", "--out", str(out), "--mode", "offline", cwd=REPO)
        assert res.returncode == 2 and words in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert (bag / "notes.txt").read_text() == "mine"


def test_demo_renders_a_dive_and_writes_a_report(shared, tmp_path) -> None:
    # a fresh interpreter, as `make demo` starts it
    short = ["--mode", "offline", "--seconds", "1", "--timesteps", "1,2", "--threads", "1"]
    res = cold_cli("demo", "--out", tmp_path, *short, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "rendered a synthetic dive (10 frames" in res.stdout
    assert "dehaze only" not in res.stdout  # the shipped segmenter runs too
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    # the T sweep, then the default 100 ms latency-budget run, whose T varies per frame
    assert [s["label"] for s in doc["summary"]] == ["T=1", "T=2", "budget=100ms"]
    assert [s["timesteps"] for s in doc["summary"]] == [1, 2, None]
    assert doc["summary"][2]["latency_budget_ms"] == 100.0
    budgeted = doc["summary"][2]["dehaze"]
    assert sum(budgeted["timesteps_histogram"].values()) == budgeted["processed"]
    seg = doc["summary"][1]["segment"]
    # paced in real time: on a loaded machine the segmenter may drop a frame, never lose one
    assert seg["processed"] + seg["dropped"] == 10 and seg["processed"] >= 5 and seg["undecodable"] == 0
    assert seg["timesteps"] == 2
    assert abs(sum(seg["area_fractions"].values()) - 1.0) < 1e-6
    assert all(len(r["frames"]) == 10 for r in doc["runs"])
    assert doc["topics"]["reference"] == "/camera/reference"
    q = doc["summary"][1]["dehaze"]["quality"]
    assert q["psnr_out"] is not None and q["psnr_raw"] is not None
    # the dive pans over SUIM photographs and their masks: the segmenter is scored too
    assert "SUIM class masks" in res.stdout and doc["topics"]["mask"] == "/camera/mask"
    assert 0.0 < doc["summary"][1]["segment"]["quality"]["miou_dataset"] <= 1.0


class _ColourSegmenter(torch.nn.Module):
    """A real (tiny) segmentation model: class 0 where red dominates, class 1 where blue does."""

    size_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        return self.conv(x)

    def set_counting(self, enabled: bool) -> None:
        pass

    def read_counters(self) -> OpCounts:
        return OpCounts()


def test_segmentation_replay_reports_areas_and_miou(tmp_path) -> None:
    registry.register("test_colour_segmenter", lambda meta: _ColourSegmenter())
    model = _ColourSegmenter()
    with torch.no_grad():
        model.conv.weight.copy_(torch.tensor([[1.0, 0, -1.0], [-1.0, 0, 1.0]]).view(2, 3, 1, 1))
        model.conv.bias.zero_()
    weights = tmp_path / "seg.safetensors"
    save_checkpoint(
        weights,
        model.state_dict(),
        {
            "arch": "test_colour_segmenter",
            "task": "segment",
            "num_classes": 2,
            "default_timesteps": 1,
            "class_names": ["red", "blue"],
            "class_colors": [[255, 0, 0], [0, 0, 255]],
        },
    )
    frame = np.zeros((16, 20, 3), np.uint8)
    frame[:, :5] = (200, 0, 0)  # a quarter red, the rest blue
    frame[:, 5:] = (0, 0, 200)
    gt = np.ones((16, 20, 3), np.uint8)
    gt[:, :5] = 0
    gt[:4, 5:] = 0  # ground truth differs from the prediction on 4×15 pixels
    with BagWriter(tmp_path / "bag") as bag:
        for i in range(3):
            bag.write_image("/camera/image", frame, 10**9 + i * 10**8)
            bag.write_image("/camera/masks", gt, 10**9 + i * 10**8)
    cfg = _config(
        tmp_path / "bag",
        tmp_path / "out",
        rate=None,
        run_dehaze=False,
        segment_weights=str(weights),
        mask_topic="/camera/masks",
        samples=1,
    )
    result = run_offline(cfg)
    rows = result.runs[0].rows
    assert [r["seg_status"] for r in rows] == ["ok"] * 3 and all("status" not in r for r in rows)
    assert rows[0]["area_red"] == pytest.approx(0.25) and rows[0]["area_blue"] == pytest.approx(0.75)
    # IoU red = 80 / 140, blue = 180 / 240
    assert rows[0]["seg_miou"] == pytest.approx((80 / 140 + 180 / 240) / 2)
    s = summarize(result.runs[0], None)["segment"]
    assert s["quality"]["miou_dataset"] == pytest.approx((80 / 140 + 180 / 240) / 2)
    assert s["area_fractions"] == pytest.approx({"red": 0.25, "blue": 0.75})
    assert s["quality"]["per_class_iou"] == pytest.approx({"red": 80 / 140, "blue": 180 / 240})
    assert s["quality"]["pixel_acc"] == pytest.approx(260 / 320)
    assert result.runs[0].samples[0].mask_color is not None
    files = write_report(result, tmp_path / "out")
    assert "quality.png" in {p.name for p in files.plots}


def test_a_latency_budget_run_follows_the_fixed_t_runs(euvp_bag_6, engines, tmp_path) -> None:
    """``--latency-budget``: one more run in which the dehazer picks T per frame (at least one step),
    with its T histogram and share of late frames in the summary and table."""
    from snn_perception.replay.summary import summary_table

    config = _config(
        euvp_bag_6,
        tmp_path,
        rate=1.0,
        timesteps=(4,),
        latency_budgets=(10_000.0, 1.0),
        nr_metrics=False,
        samples=0,
    )
    result = run_offline(config, engines)
    assert [r.label for r in result.runs] == ["T=4", "budget=10000ms", "budget=1ms"]
    generous, tiny = (summarize(r, 1.0)["dehaze"] for r in result.runs[1:])
    assert set(generous["timesteps_histogram"]) <= {1, 4} and generous["budget_miss_rate"] == 0.0
    assert tiny["timesteps_histogram"] == {1: tiny["processed"]}  # never zero steps
    assert tiny["budget_miss_rate"] == 1.0
    cells = {(row[0], row[1]): row[2] for row in summary_table([summarize(r, 1.0) for r in result.runs])[1:]}
    assert cells[("T=4", "dehaze")] == "4"
    assert cells[("budget=1ms", "dehaze")] == f"1×{tiny['processed']}, 100% late"


def test_bad_latency_budgets_are_refused(euvp_bag, tmp_path) -> None:
    for bad, text in (("x", "expected milliseconds"), ("0", "(0, 10000]"), ("50,50", "given twice")):
        _assert_usage_error(
            _cli(str(euvp_bag), "--mode", "offline", "--latency-budget", bad, "--out", str(tmp_path / "o")),
            text,
        )
