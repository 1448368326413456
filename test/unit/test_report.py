"""Replay reports: summary statistics, files written, and an HTML that links only existing files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from snn_perception.replay.bag_io import BagInfo, TopicInfo
from snn_perception.replay.common import ReplayConfig, ReplayResult, RunResult, Sample, Topics
from snn_perception.replay.report import html_links, write_report
from snn_perception.replay.summary import format_table, summarize, summary_table

RNG = np.random.default_rng(0)


def _run(
    t: int | None,
    n: int = 30,
    reference: bool = True,
    dropped: tuple[int, ...] = (4, 5),
    bad: tuple[int, ...] = (9,),
) -> RunResult:
    run = RunResult(label=f"T={t}" if t else "default", timesteps=t)
    for i in range(n):
        row = {"index": i, "stamp_ns": 10**9 + i * 10**8, "time_s": i * 0.1}
        if i in bad:
            row.update(status="undecodable", error="compressed image could not be decoded")
        elif i in dropped:
            row.update(status="dropped")
        else:
            lat = float(RNG.uniform(20, 80)) * (t or 4)
            row.update(
                status="ok",
                timesteps=t or 4,
                inference_ms=lat * 0.9,
                engine_ms=lat,
                cpu_time_ms=lat,
                queue_wait_ms=0.0,
                end_to_end_ms=lat,
                synaptic_ops=1e8 * (t or 4),
                analog_macs=1e8,
                energy_j=(0.9 * 1e8 * (t or 4) + 4.6e8) * 1e-12,
                spike_rate=0.15,
                uiqm_raw=2.0,
                uiqm_out=2.5 + 0.01 * (t or 4),
                uciqe_raw=0.4,
                uciqe_out=0.45,
            )
            if reference:
                row.update(psnr_raw=17.0, psnr_out=18.0 + 0.1 * (t or 4), ssim_raw=0.68, ssim_out=0.7)
        run.rows.append(row)
    img = RNG.integers(0, 256, (60, 80, 3), np.uint8)
    run.samples = [Sample(index=0, raw=img, enhanced=img[::-1], reference=img if reference else None)]
    run.wall_s = 3.0
    return run


def _result(runs: list[RunResult], reference: bool = True, interrupted: bool = False) -> ReplayResult:
    info = BagInfo(
        path=Path("/bags/dive"),
        storage="mcap",
        topics={"/camera/image": TopicInfo("/camera/image", "sensor_msgs/msg/Image", 30)},
    )
    topics = Topics(
        info=info,
        image="/camera/image",
        reference="/camera/reference" if reference else None,
        mask=None,
        frames=30,
    )
    cfg = ReplayConfig(
        bag=Path("/bags/dive"), out=Path("out"), timesteps=tuple(r.timesteps for r in runs if r.timesteps)
    )
    models = {
        "dehaze": {
            "arch": "snntrans_dhz",
            "variant": "official",
            "weights_id": "abc123",
            "weights_path": "w.pth",
            "default_timesteps": 4,
            "class_names": [],
        }
    }
    return ReplayResult(
        config=cfg,
        topics=topics,
        runs=runs,
        models=models,
        interrupted=interrupted,
        notes=["no segmentation model available: dehaze only"],
    )


def test_summary_statistics_and_drop_accounting() -> None:
    run = _run(4)
    s = summarize(run, 1.0)
    d = s["dehaze"]
    lat = np.array([r["end_to_end_ms"] for r in run.rows if r["status"] == "ok"])
    assert (d["processed"], d["dropped"], d["undecodable"]) == (27, 2, 1)
    assert d["processed"] + d["dropped"] + d["undecodable"] == s["frames"] == 30
    assert d["drop_rate"] == pytest.approx(2 / 29)
    assert d["latency_ms"]["mean"] == pytest.approx(lat.mean())
    assert d["latency_ms"]["median"] == pytest.approx(np.median(lat))
    assert d["latency_ms"]["p95"] == pytest.approx(np.percentile(lat, 95))
    assert d["throughput_fps"] == pytest.approx(27 / (lat.sum() / 1e3))
    assert d["energy_per_frame_j"] == pytest.approx((0.9 * 4e8 + 4.6e8) * 1e-12)
    assert d["quality"]["psnr_out"] == pytest.approx(18.4) and d["quality"]["ssim_raw"] == pytest.approx(0.68)
    assert "segment" not in s


def test_report_files_and_html_links_only_existing_files(tmp_path: Path) -> None:
    files = write_report(_result([_run(1), _run(2), _run(4), _run(8)]), tmp_path)
    names = {p.name for p in files.plots}
    assert names == {"latency_time.png", "latency_hist.png", "energy.png", "quality.png", "tradeoff.png"}
    assert files.markdown is not None and files.markdown.is_file()
    links = html_links(files.html)
    assert set(links) >= names | {"report.json", "frames.csv", "contact_sheet.jpg"}
    for link in links:
        assert "://" not in link and (tmp_path / link).is_file(), link
    doc = json.loads(files.json.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert [len(r["frames"]) for r in doc["runs"]] == [30, 30, 30, 30]
    assert [s["timesteps"] for s in doc["summary"]] == [1, 2, 4, 8]
    with files.csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 120 and {r["run"] for r in rows} == {"T=1", "T=2", "T=4", "T=8"}
    assert rows[4]["status"] == "dropped" and rows[4]["end_to_end_ms"] == ""


def test_without_references_or_sweep_only_the_relevant_plots_are_written(tmp_path: Path) -> None:
    files = write_report(_result([_run(None, reference=False)], reference=False), tmp_path)
    assert "tradeoff.png" not in {p.name for p in files.plots}
    assert "psnr" not in json.dumps(json.loads(files.json.read_text())["summary"])
    for link in html_links(files.html):
        assert (tmp_path / link).is_file()


def test_partial_report_is_marked(tmp_path: Path) -> None:
    run = _run(4)
    run.interrupted = True
    files = write_report(_result([run], interrupted=True), tmp_path)
    assert json.loads(files.json.read_text())["partial"] is True
    assert "Partial report" in files.html.read_text()


def test_summary_table_has_one_line_per_model_and_run() -> None:
    summaries = [summarize(r, None) for r in (_run(1), _run(4))]
    table = summary_table(summaries)
    assert len(table) == 3 and table[1][:3] == ["T=1", "dehaze", "1"]
    assert "17.00→18.10" in table[1] and "17.00→18.40" in table[2]
    text = format_table(table)
    assert text.splitlines()[1].startswith("---")


def test_nan_energy_when_not_counted_stays_out_of_the_means() -> None:
    run = _run(4)
    for r in run.rows:
        if r["status"] == "ok":
            r["energy_j"] = math.nan
    assert summarize(run, None)["dehaze"]["energy_per_frame_j"] is None


def test_a_budget_sweep_gets_a_budget_plot_beside_the_fixed_t_runs(tmp_path: Path) -> None:
    """Quality against the budget (fixed-T runs as reference lines), p95 latency and late frames
    against the budget, and the T each budget used: budget.png, linked from the page."""
    runs = [_run(1), _run(4)]
    for budget, ts in ((60.0, (1, 1, 2)), (200.0, (2, 4, 4))):
        run = _run(4)
        run.label, run.latency_budget_ms = f"budget {budget:g} ms", budget
        ok = [r for r in run.rows if r["status"] == "ok"]
        for i, r in enumerate(ok):
            r["timesteps"] = ts[i % 3]
            r["budget_missed"] = r["end_to_end_ms"] > budget
        runs.append(run)
    files = write_report(_result(runs), tmp_path)
    assert "budget.png" in {p.name for p in files.plots}
    assert "budget.png" in html_links(files.html)
    summary = json.loads(files.json.read_text())["summary"]
    assert summary[2]["dehaze"]["timesteps_histogram"] == {"1": 18, "2": 9}
    assert 0 < summary[2]["dehaze"]["budget_miss_rate"] <= 1


def test_no_budget_plot_without_a_budget_run(tmp_path: Path) -> None:
    files = write_report(_result([_run(1), _run(4)]), tmp_path)
    assert "budget.png" not in {p.name for p in files.plots}


def test_the_report_opens_with_one_recommended_setting_and_its_numbers(tmp_path: Path) -> None:
    """The run with the best PSNR among those that keep up (≤ 10 % dropped) is named in one sentence
    at the top of the HTML and Markdown; when none keeps up, the one that drops least."""
    from snn_perception.replay.summary import recommendation

    runs = [_run(1), _run(4), _run(8, dropped=tuple(range(2, 20)))]  # T=8 best PSNR but drops 60 %
    summaries = [summarize(r, 1.0) for r in runs]
    advice = recommendation(summaries)
    assert advice is not None and advice.startswith("Recommended: T=4")
    assert "PSNR 18.40 dB (input 17.00)" in advice and "ms" in advice and "keep up" in advice
    files = write_report(_result(runs), tmp_path)
    page = files.html.read_text()
    assert page.index("Recommended: T=4") < page.index("<h2>Summary</h2>")
    assert "Recommended: T=4" in files.markdown.read_text()
    lagging = [summarize(_run(t, dropped=tuple(range(2, 2 + d))), 1.0) for t, d in ((2, 15), (4, 20))]
    assert recommendation(lagging).startswith("Recommended: T=2") and "drops least" in recommendation(lagging)
    assert recommendation([summarize(_run(4, reference=False), 1.0)]).startswith("Recommended: T=4 — UIQM")


def test_a_segmentation_run_gets_the_class_legend_beside_the_sample_frames(tmp_path: Path) -> None:
    """legend.png (colour, name, share of the frame per class) is written and shown when a
    segmentation model ran; its colours are the overlay colours (runtime.legend)."""
    import cv2

    result = _result([_run(4)])
    result.models["segment"] = {
        "arch": "spiking_unet",
        "variant": "",
        "weights_id": "def456",
        "default_timesteps": 4,
        "class_names": ["water", "diver"],
        "class_colors": [[0, 0, 0], [0, 0, 255]],
    }
    for r in result.runs[0].rows:
        if r["status"] == "ok":
            r.update(
                seg_status="ok",
                seg_end_to_end_ms=50.0,
                seg_inference_ms=40.0,
                seg_timesteps=4,
                area_water=0.75,
                area_diver=0.25,
            )
    files = write_report(result, tmp_path)
    assert files.legend is not None and files.legend.name in html_links(files.html)
    legend = cv2.cvtColor(cv2.imread(str(files.legend)), cv2.COLOR_BGR2RGB)
    assert (legend == (0, 0, 255)).all(axis=2).sum() > 50  # the diver swatch, in the overlay's blue
    assert "Segmentation classes" in files.html.read_text()
    assert write_report(_result([_run(4)]), tmp_path / "dehaze_only").legend is None


def test_the_contact_sheet_shows_the_default_t_run_with_a_tile_for_a_dropped_output(tmp_path: Path) -> None:
    from snn_perception.replay.plots import _sheet_run, write_contact_sheet

    runs = [_run(1), _run(4), _run(8)]
    img = RNG.integers(0, 256, (60, 80, 3), np.uint8)
    runs[1].samples.append(Sample(index=5, raw=img, enhanced=None, reference=img))  # dropped there
    result = _result(runs)
    assert _sheet_run(result) is runs[1]  # T=4, the weights' default, not the last run (T=8)
    sheet = write_contact_sheet(result, tmp_path)
    pixels = cv2.imread(str(sheet))
    row = 160 + 4
    assert pixels.shape[0] == 2 * row
    # every row has its three tiles (raw | enhanced | reference): the dropped one is grey, not missing
    second = pixels[row + 40 : row + 150, 220:420]
    assert abs(float(second.mean()) - 200) < 12 and float(second.std()) < 25


def test_the_html_has_captions_and_no_stray_values(tmp_path: Path) -> None:
    files = write_report(_result([_run(1), _run(4)], reference=False), tmp_path)
    html = files.html.read_text()
    from snn_perception.replay.plots import CAPTIONS

    assert CAPTIONS["tradeoff"] in html.replace("\n", " ") or CAPTIONS["tradeoff"][:40] in html
    assert "<figcaption>latency_time</figcaption>" not in html  # a sentence, not a file stem
    assert "None" not in html and "<ul></ul>" not in html.replace("\n", "")
    assert "no reference topic" in html
    assert 'class="wide"' in html  # the trade-off figure spans the page


def test_the_report_reads_the_sweep_for_a_person(tmp_path: Path) -> None:
    from snn_perception.replay.summary import reading_notes

    runs = [_run(1), _run(4), _run(8)]
    runs[2].rows = [
        dict(r, status="dropped") if r["index"] % 3 == 0 and r.get("status") == "ok" else r
        for r in runs[2].rows
    ]
    summaries = [summarize(r, 1.0) for r in runs]
    notes = reading_notes(summaries)
    # _run's PSNR grows with T: the best is T=8, so no "costs more for less" sentence
    assert notes[0].startswith("dehaze: the best PSNR of the sweep is T=8 (18.80 dB).")
    assert any("T=8 (dehaze)" in n and "cannot keep up" in n for n in notes)
    html = write_report(_result(runs), tmp_path).html.read_text()
    assert "<h3>Reading it</h3>" in html and "the best PSNR of the sweep is T=8" in html
    flipped = [summarize(r, 1.0) for r in (_run(1), _run(4))]
    flipped[1]["dehaze"]["quality"]["psnr_out"] = 17.0  # T=4 worse than T=1
    note = reading_notes(flipped)[0]
    assert "T=4 uses" in note and "scores 1.10 dB PSNR lower" in note, note


def test_labels_of_coinciding_points_do_not_overlap() -> None:
    """Two runs often land on one point (T=1 and a budget that always picks T=1): their labels
    are moved apart, not drawn over each other."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from snn_perception.replay.plots import _place_labels

    fig, ax = plt.subplots()
    ax.plot([1, 1, 2], [5, 5, 6], "o")
    _place_labels(ax, [(1, 5, "T=1, 0% dropped"), (1, 5, "100 ms budget, 0% dropped"), (2, 6, "T=2")])
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    plt.close(fig)
    assert len(boxes) == 3
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
