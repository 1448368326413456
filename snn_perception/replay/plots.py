"""Replay plots (matplotlib, Agg backend: no display needed) and the contact sheet of sample frames."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from snn_perception.replay.common import ReplayResult, RunResult


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _series(run: RunResult, key: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for r in run.rows:
        v = r.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            xs.append(r.get("time_s", r["index"]))
            ys.append(v)
    return np.array(xs), np.array(ys)


def _legend(ax) -> None:
    """Beside the axes, not over the data (a sweep of two models makes eight series)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _save(fig, path: Path, plots: list[Path]) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _plt().close(fig)
    plots.append(path)


def write_plots(result: ReplayResult, out: Path, summaries: list[dict[str, Any]]) -> list[Path]:
    plt = _plt()
    plots: list[Path] = []
    runs = result.runs
    has = {
        k: any(k in r for run in runs for r in run.rows)
        for k in (
            "end_to_end_ms",
            "seg_end_to_end_ms",
            "energy_j",
            "seg_energy_j",
            "psnr_out",
            "uiqm_out",
            "seg_miou",
        )
    }

    if has["end_to_end_ms"] or has["seg_end_to_end_ms"]:
        fig, ax = plt.subplots(figsize=(9.5, 3.4))
        for run in runs:
            for key, tag in (("end_to_end_ms", "dehaze"), ("seg_end_to_end_ms", "segment")):
                x, y = _series(run, key)
                if y.size:
                    ax.plot(x, y, ".-", ms=3, lw=0.8, label=f"{tag} {run.label}")
        ax.set_xlabel("bag time (s)" if result.config.rate else "frame time in bag (s)")
        ax.set_ylabel("end-to-end latency (ms)")
        ax.set_title("Latency over time")
        _legend(ax)
        ax.grid(alpha=0.3)
        _save(fig, out / "latency_time.png", plots)

        fig, ax = plt.subplots(figsize=(9.5, 3.4))
        for run in runs:
            for key, tag in (("end_to_end_ms", "dehaze"), ("seg_end_to_end_ms", "segment")):
                _, y = _series(run, key)
                if y.size:
                    ax.hist(y, bins=30, alpha=0.55, label=f"{tag} {run.label}")
        ax.set_xlabel("end-to-end latency (ms)")
        ax.set_ylabel("frames")
        ax.set_title("Latency histogram")
        _legend(ax)
        _save(fig, out / "latency_hist.png", plots)

    if has["energy_j"] or has["seg_energy_j"]:
        fig, ax = plt.subplots(figsize=(9.5, 3.4))
        for run in runs:
            for key, tag in (("energy_j", "dehaze"), ("seg_energy_j", "segment")):
                x, y = _series(run, key)
                if y.size:
                    ax.plot(x, y * 1e3, ".-", ms=3, lw=0.8, label=f"{tag} {run.label}")
        ax.set_xlabel("bag time (s)")
        ax.set_ylabel("estimated energy per frame (mJ, 45 nm)")
        ax.set_title("Energy per frame")
        _legend(ax)
        ax.grid(alpha=0.3)
        _save(fig, out / "energy.png", plots)

    qkeys = [("psnr_raw", "psnr_out", "PSNR (dB)")] if has["psnr_out"] else []
    if has["uiqm_out"]:
        qkeys.append(("uiqm_raw", "uiqm_out", "UIQM"))
    if has["seg_miou"]:
        qkeys.append((None, "seg_miou", "mIoU"))
    if qkeys:
        fig, axes = plt.subplots(len(qkeys), 1, figsize=(9.5, 2.8 * len(qkeys)), squeeze=False)
        for ax, (kraw, kout, name) in zip(axes[:, 0], qkeys, strict=True):
            if kraw is not None:
                x, y = _series(runs[0], kraw)
                if y.size:
                    ax.plot(x, y, "k--", lw=1, label="raw input")
            for run in runs:
                x, y = _series(run, kout)
                if y.size:
                    ax.plot(x, y, ".-", ms=3, lw=0.8, label=f"output {run.label}")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            _legend(ax)
        axes[-1, 0].set_xlabel("bag time (s)")
        axes[0, 0].set_title("Quality per frame")
        _save(fig, out / "quality.png", plots)

    _tradeoff_plot(result, summaries, out, plots)
    _budget_plot(summaries, out, plots)
    return plots


#: what each plot shows, for the report's captions (file stem → sentence)
CAPTIONS = {
    "latency_time": "Latency of every frame (arrival to result) over the dive, per run and model.",
    "latency_hist": "Distribution of the latency per run and model.",
    "energy": "Estimated energy per frame (45 nm model) over the dive.",
    "quality": "Quality of every frame: the dashed line is the raw input.",
    "tradeoff": (
        "Choosing a setting: each point is one run, quality against p95 latency (left) and energy "
        "(right); the label gives T (or the budget) and the share of frames dropped. Right of the "
        "dashed line (the frame period) a run cannot keep up with the camera."
    ),
    "budget": (
        "Latency-budget runs: quality, p95 latency and late share per budget, and the T each frame used."
    ),
}
WIDE = ("tradeoff", "budget")


def _quality_of(summary: dict[str, Any], task: str) -> tuple[float | None, str]:
    """The quality a trade-off point shows: PSNR out (else UIQM out) for dehaze, dataset mIoU for segment."""
    q = summary.get(task, {}).get("quality", {}) or {}
    if task == "segment":
        return q.get("miou_dataset"), "mIoU"
    if q.get("psnr_out") is not None:
        return q["psnr_out"], "PSNR out (dB)"
    return q.get("uiqm_out"), "UIQM out"


def _frame_period_ms(result: ReplayResult) -> float | None:
    """The camera's frame period as the replay paced it (None when not paced)."""
    rate = result.config.rate
    times = [r["time_s"] for r in (result.runs[0].rows if result.runs else []) if "time_s" in r]
    if rate is None or len(times) < 2:
        return None
    step = float(np.median(np.diff(sorted(times))))
    return step * 1e3 / rate if step > 0 else None


def _tradeoff_plot(
    result: ReplayResult, summaries: list[dict[str, Any]], out: Path, plots: list[Path]
) -> None:
    """Quality vs p95 latency and vs energy, one row per model, every run a labelled point."""
    tasks = [
        t for t in ("dehaze", "segment") if sum(_quality_of(s, t)[0] is not None for s in summaries) >= 2
    ]
    if not tasks:
        return
    plt = _plt()
    period = _frame_period_ms(result)
    fig, axes = plt.subplots(len(tasks), 2, figsize=(12, 3.8 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        for col, (xlabel, xof) in enumerate(
            (
                ("p95 latency, arrival to result (ms)", lambda m: m["latency_ms"]["p95"]),
                (
                    "energy per frame (mJ, 45 nm estimate)",
                    lambda m: (m["energy_per_frame_j"] or 0) * 1e3 or None,
                ),
            )
        ):
            ax = axes[row, col]
            labels: list[tuple[float, float, str]] = []
            for budgeted, style in ((False, "o-"), (True, "s")):
                pts = []
                for s in summaries:
                    m, q = s.get(task), _quality_of(s, task)[0]
                    if m is None or q is None or bool(s.get("latency_budget_ms")) != budgeted:
                        continue
                    x = xof(m)
                    if x is None:
                        continue
                    what = f"{s['latency_budget_ms']:g} ms budget" if budgeted else f"T={s['timesteps']}"
                    pts.append((x, q, f"{what}, {(m['drop_rate'] or 0):.0%} dropped"))
                if pts:  # fixed-T points joined in T order
                    label = "latency budget" if budgeted else "fixed T"
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], style, ms=7, label=label)
                    labels += pts
            if col == 0 and period is not None:
                ax.axvline(period, color="0.4", ls="--", lw=1)
                ax.annotate(
                    f"frame period {period:.0f} ms",
                    (period, 0.02),
                    xycoords=("data", "axes fraction"),
                    rotation=90,
                    fontsize=8,
                    color="0.3",
                    xytext=(-11, 0),
                    textcoords="offset points",
                )
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{task}: {_quality_of(next(s for s in summaries if task in s), task)[1]}")
            ax.grid(alpha=0.3)
            ax.margins(x=0.25, y=0.2)
            if col == 0:
                ax.legend(fontsize=8, loc="lower right")
            _place_labels(ax, labels)
    fig.suptitle("Quality against latency and energy, per run")
    _save(fig, out / "tradeoff.png", plots)


#: where a point's label may go, in points from the point: tried in order until it overlaps none
_LABEL_OFFSETS = ((6, 6), (6, -14), (6, 18), (6, -26), (6, 30), (6, -38), (-6, 6), (-6, -14))


def _place_labels(ax: Any, labels: list[tuple[float, float, str]], fontsize: float = 9) -> None:
    """Annotate each point, moving a label off the ones already placed (points of two runs often
    coincide, e.g. T = 1 and a budget that always picks T = 1). Greedy, in display space."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()  # settles the axis limits that the label boxes depend on
    renderer = fig.canvas.get_renderer()
    prop = FontProperties(size=fontsize)
    scale = fig.dpi / 72.0  # points → pixels
    legend = ax.get_legend()
    placed: list[Any] = [legend.get_window_extent(renderer)] if legend is not None else []
    frame = ax.get_window_extent(renderer)
    for x, y, text in labels:
        w, h, descent = renderer.get_text_width_height_descent(text, prop, ismath=False)
        px, py = ax.transData.transform((x, y))
        free: list[tuple[tuple[int, int], Any]] = []
        for dx, dy in _LABEL_OFFSETS:
            left = px + dx * scale - (w if dx < 0 else 0.0)
            candidate = Bbox.from_bounds(left, py + dy * scale - descent, w, h)
            if not any(candidate.overlaps(other) for other in placed):
                free.append(((dx, dy), candidate))
        inside = [f for f in free if frame.x0 <= f[1].x0 and f[1].x1 <= frame.x1]
        if inside or free:  # best: free and inside the axes; else free; else the first position
            choice, box = (inside or free)[0]
        else:
            choice = _LABEL_OFFSETS[0]
            box = Bbox.from_bounds(px + choice[0] * scale, py + choice[1] * scale - descent, w, h)
        ax.annotate(
            text,
            (x, y),
            textcoords="offset points",
            xytext=choice,
            fontsize=fontsize,
            ha="left" if choice[0] >= 0 else "right",
        )
        placed.append(box)


#: the quality a budget plot shows per model: (summary key, axis label)
_BUDGET_QUALITY = {"dehaze": ("psnr_out", "PSNR out (dB)"), "segment": ("miou_dataset", "mIoU")}


def _budget_plot(summaries: list[dict[str, Any]], out: Path, plots: list[Path]) -> None:
    """``budget.png`` when a run had a latency budget: per model, quality against the budget with
    the fixed-T runs as reference lines, p95 latency and the share of late frames against the
    budget, and the T each budget ran (stacked shares)."""
    models = [
        m for m in ("dehaze", "segment") if any(s.get("latency_budget_ms") and m in s for s in summaries)
    ]
    if not models:
        return
    plt = _plt()
    fig, axes = plt.subplots(len(models), 3, figsize=(12, 3.4 * len(models)), squeeze=False)
    for row, model in zip(axes, models, strict=True):
        qkey, qlabel = _BUDGET_QUALITY[model]
        runs = sorted(
            (s for s in summaries if s.get("latency_budget_ms") and model in s),
            key=lambda s: s["latency_budget_ms"],
        )
        budgets = [s["latency_budget_ms"] for s in runs]
        quality = [s[model].get("quality", {}).get(qkey) for s in runs]
        pts = [(b, q) for b, q in zip(budgets, quality, strict=True) if q is not None]
        if pts:
            row[0].plot([b for b, _ in pts], [q for _, q in pts], "o-", label="with a budget")
        fixed = [
            (s["timesteps"], q)
            for s in summaries
            if not s.get("latency_budget_ms")
            and (q := s.get(model, {}).get("quality", {}).get(qkey)) is not None
        ]
        for i, (t, q) in enumerate(fixed):  # reference lines, named in the legend (labels would overlap)
            row[0].axhline(
                q, ls="--", lw=1, color=plt.cm.viridis(i / max(1, len(fixed) - 1)), label=f"fixed T={t}"
            )
        if pts or fixed:
            row[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        if not pts:  # e.g. segmentation without a mask topic
            what = "ground-truth masks" if model == "segment" else "reference images"
            row[0].text(
                0.5, 0.5, f"not scored: no {what} in the bag", ha="center", transform=row[0].transAxes
            )
        row[0].set(xlabel="latency budget (ms)", ylabel=qlabel, title=f"{model}: quality vs budget")
        p95 = [s[model]["latency_ms"]["p95"] for s in runs]
        miss = [s[model].get("budget_miss_rate") for s in runs]
        row[1].plot(budgets, [v if v is not None else float("nan") for v in p95], "o-", label="p95 latency")
        if len(budgets) > 1:
            row[1].plot(budgets, budgets, "k:", lw=0.8, label="budget")
        else:
            row[1].axhline(budgets[0], color="k", ls=":", lw=0.8, label="budget")
        for b, v, m in zip(budgets, p95, miss, strict=True):
            if v is not None and m is not None:
                row[1].annotate(
                    f"{m:.0%} late", (b, v), fontsize=7, xytext=(4, 4), textcoords="offset points"
                )
        row[1].set(xlabel="latency budget (ms)", ylabel="arrival → result (ms)", title="deadline")
        row[1].legend(fontsize=7)
        ts = sorted({int(t) for s in runs for t in s[model].get("timesteps_histogram", {})})
        bottom = np.zeros(len(runs))
        for t in ts:
            shares = []
            for s in runs:
                hist = {int(k): v for k, v in s[model].get("timesteps_histogram", {}).items()}
                shares.append(hist.get(t, 0) / max(1, sum(hist.values())))
            row[2].bar([str(b) for b in budgets], shares, bottom=bottom, label=f"T={t}")
            bottom += np.array(shares)
        row[2].set(xlabel="latency budget (ms)", ylabel="share of frames", title="T used")
        row[2].legend(fontsize=7, ncol=2)
        for ax in row:
            ax.grid(alpha=0.3)
    _save(fig, out / "budget.png", plots)


def write_legend(result: ReplayResult, summaries: list[dict[str, Any]], out: Path) -> Path | None:
    """``legend.png`` when a segmentation model ran: each class's colour (as in the overlays), name
    and share of the frame (the mean over the processed frames of the last run that segmented)."""
    from snn_perception.runtime.legend import legend_entries, legend_image

    info = result.models.get("segment")
    if info is None:
        return None
    names = list(info.get("class_names", ()))
    colors = [tuple(c) for c in info.get("class_colors", ())]
    names, colors = legend_entries(names, colors, len(names))
    if not names:
        return None
    areas = next((s["segment"]["area_fractions"] for s in reversed(summaries) if "segment" in s), {})
    shares = [areas.get(n) or 0.0 for n in names] if areas else None
    path = out / "legend.png"
    cv2.imwrite(str(path), cv2.cvtColor(legend_image(names, colors, shares), cv2.COLOR_RGB2BGR))
    return path


def _sheet_run(result: ReplayResult) -> RunResult | None:
    """The run whose frames the contact sheet shows: the fixed-T run at the dehazer's (else the
    segmenter's) default T, as a user would run it; else the last run with samples."""
    with_samples = [r for r in result.runs if r.samples]
    defaults = [m.get("default_timesteps") for m in result.models.values()]
    for t in defaults:
        for run in with_samples:
            if not run.latency_budget_ms and run.timesteps in (t, None):
                return run
    return with_samples[-1] if with_samples else None


def _tile(image: np.ndarray | None, label: str, height: int, like: np.ndarray) -> np.ndarray:
    """One labelled tile ``height`` high; a missing output (a dropped frame) is a grey tile saying so."""
    if image is None:
        image = np.full_like(like, 200)
        label = f"{label}: dropped"
    w = max(1, round(image.shape[1] * height / image.shape[0]))
    tile = cv2.resize(image, (w, height), interpolation=cv2.INTER_AREA)
    # white on a dark band: an outline drawn with a thicker stroke advances differently and smears
    (w_text, h_text), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    band = tile[: h_text + 10, : w_text + 10]
    band[:] = (band * 0.35).astype(tile.dtype)
    cv2.putText(tile, label, (5, h_text + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def write_contact_sheet(result: ReplayResult, out: Path, height: int = 160) -> Path | None:
    """Sample frames of the run at the default T, one per row: raw | enhanced | mask overlay |
    reference, the same columns in every row (see :func:`_sheet_run`)."""
    run = _sheet_run(result)
    if run is None:
        return None
    kinds = ("raw", f"enhanced {run.label}", f"mask overlay {run.label}", "reference")
    fields = ("raw", "enhanced", "mask_color", "reference")
    present = [i for i, f in enumerate(fields) if any(getattr(s, f) is not None for s in run.samples)]
    rows = []
    for s in run.samples:
        tiles = [
            _tile(getattr(s, fields[i]), f"raw #{s.index}" if i == 0 else kinds[i], height, s.raw)
            for i in present
        ]
        rows.append(np.concatenate(tiles, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    sheet = np.concatenate(rows, axis=0)
    path = out / "contact_sheet.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    return path
