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
        fig, ax = plt.subplots(figsize=(7, 3.2))
        for run in runs:
            for key, tag in (("end_to_end_ms", "dehaze"), ("seg_end_to_end_ms", "segment")):
                x, y = _series(run, key)
                if y.size:
                    ax.plot(x, y, ".-", ms=3, lw=0.8, label=f"{tag} {run.label}")
        ax.set_xlabel("bag time (s)" if result.config.rate else "frame time in bag (s)")
        ax.set_ylabel("end-to-end latency (ms)")
        ax.set_title("Latency over time")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        _save(fig, out / "latency_time.png", plots)

        fig, ax = plt.subplots(figsize=(7, 3.2))
        for run in runs:
            for key, tag in (("end_to_end_ms", "dehaze"), ("seg_end_to_end_ms", "segment")):
                _, y = _series(run, key)
                if y.size:
                    ax.hist(y, bins=30, alpha=0.55, label=f"{tag} {run.label}")
        ax.set_xlabel("end-to-end latency (ms)")
        ax.set_ylabel("frames")
        ax.set_title("Latency histogram")
        ax.legend(fontsize=7)
        _save(fig, out / "latency_hist.png", plots)

    if has["energy_j"] or has["seg_energy_j"]:
        fig, ax = plt.subplots(figsize=(7, 3.2))
        for run in runs:
            for key, tag in (("energy_j", "dehaze"), ("seg_energy_j", "segment")):
                x, y = _series(run, key)
                if y.size:
                    ax.plot(x, y * 1e3, ".-", ms=3, lw=0.8, label=f"{tag} {run.label}")
        ax.set_xlabel("bag time (s)")
        ax.set_ylabel("estimated energy per frame (mJ, 45 nm)")
        ax.set_title("Energy per frame")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        _save(fig, out / "energy.png", plots)

    qkeys = [("psnr_raw", "psnr_out", "PSNR (dB)")] if has["psnr_out"] else []
    if has["uiqm_out"]:
        qkeys.append(("uiqm_raw", "uiqm_out", "UIQM"))
    if has["seg_miou"]:
        qkeys.append((None, "seg_miou", "mIoU"))
    if qkeys:
        fig, axes = plt.subplots(len(qkeys), 1, figsize=(7, 2.6 * len(qkeys)), squeeze=False)
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
            ax.legend(fontsize=7)
        axes[-1, 0].set_xlabel("bag time (s)")
        axes[0, 0].set_title("Quality per frame")
        _save(fig, out / "quality.png", plots)

    swept = [s for s in summaries if s.get("timesteps") is not None and "dehaze" in s]
    if len(swept) >= 2:
        qname, qkey = ("PSNR (dB)", "psnr_out") if has["psnr_out"] else ("UIQM", "uiqm_out")
        ts = [s["timesteps"] for s in swept]
        q = [s["dehaze"].get("quality", {}).get(qkey) for s in swept]
        e = [s["dehaze"]["energy_per_frame_j"] for s in swept]
        lat = [s["dehaze"]["latency_ms"]["mean"] for s in swept]
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for ax, xs, xl in ((axes[0], e, "energy per frame (mJ)"), (axes[1], lat, "mean latency (ms)")):
            pts = [
                (x * (1e3 if xl.startswith("energy") else 1), y, t)
                for x, y, t in zip(xs, q, ts, strict=True)
                if x is not None and y is not None
            ]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-")
                for x, y, t in pts:
                    ax.annotate(f"T={t}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
            ax.set_xlabel(xl)
            ax.set_ylabel(qname)
            ax.grid(alpha=0.3)
        fig.suptitle("Timestep sweep: quality vs energy and latency")
        _save(fig, out / "tradeoff.png", plots)
    _budget_plot(summaries, out, plots)
    return plots


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
        for s in summaries:
            q = s.get(model, {}).get("quality", {}).get(qkey) if not s.get("latency_budget_ms") else None
            if q is not None:
                row[0].axhline(q, ls="--", lw=0.8, color="grey")
                row[0].annotate(
                    f"fixed T={s['timesteps']}",
                    (budgets[0], q),
                    fontsize=7,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
        if not pts:  # e.g. segmentation without a mask topic
            note = "not scored: no reference in the bag"
            row[0].text(0.5, 0.5, note, ha="center", transform=row[0].transAxes)
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


def write_contact_sheet(result: ReplayResult, out: Path, height: int = 160) -> Path | None:
    """Sample frames, one per row: raw | enhanced | mask overlay | reference (those present)."""
    run = next((r for r in reversed(result.runs) if r.samples), None)
    if run is None:
        return None
    rows = []
    names = ("raw", f"enhanced {run.label}", "mask overlay", "reference")
    for s in run.samples:
        tiles = [
            (n, t)
            for n, t in zip(names, (s.raw, s.enhanced, s.mask_color, s.reference), strict=True)
            if t is not None
        ]
        scaled = []
        for name, t in tiles:
            w = max(1, round(t.shape[1] * height / t.shape[0]))
            tile = cv2.resize(t, (w, height), interpolation=cv2.INTER_AREA)
            label = f"{name} #{s.index}" if name == "raw" else name
            cv2.putText(tile, label, (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(tile, label, (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            scaled.append(tile)
        rows.append(np.concatenate(scaled, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    sheet = np.concatenate(rows, axis=0)
    path = out / "contact_sheet.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    return path
