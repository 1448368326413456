"""Replay reports: ``report.json``, ``frames.csv``, PNG plots, a contact sheet and ``report.html``.

Every number in the HTML comes from ``report.json``, which holds every per-frame row, so a user can
recompute anything. Plots use matplotlib's Agg backend (no display needed); the HTML embeds no
external asset and links only files this module wrote (checked by :func:`html_links`).
"""

from __future__ import annotations

import csv
import html
import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from snn_perception.offline import metrics
from snn_perception.replay.common import ReplayResult, RunResult

QUALITY_KEYS = (
    "psnr_raw",
    "psnr_out",
    "ssim_raw",
    "ssim_out",
    "uiqm_raw",
    "uiqm_out",
    "uciqe_raw",
    "uciqe_out",
    "seg_miou",
)


def _finite(values: list[Any]) -> np.ndarray:
    arr = np.array([v for v in values if isinstance(v, (int, float)) and math.isfinite(v)], dtype=np.float64)
    return arr


def _stat(values: list[Any]) -> dict[str, float | None]:
    a = _finite(values)
    if a.size == 0:
        return {"mean": None, "median": None, "p95": None, "max": None}
    return {
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }


def _mean(values: list[Any]) -> float | None:
    a = _finite(values)
    return float(a.mean()) if a.size else None


def summarize(run: RunResult, rate: float | None) -> dict[str, Any]:
    """Summary of one run. Drop accounting: processed + dropped + undecodable = frames."""
    rows = run.rows
    out: dict[str, Any] = {
        "label": run.label,
        "timesteps": run.timesteps,
        "latency_budget_ms": run.latency_budget_ms or None,
        "frames": len(rows),
        "interrupted": run.interrupted,
        "wall_s": run.wall_s,
    }
    for prefix, name in (("", "dehaze"), ("seg_", "segment")):
        statuses = [r.get(f"{prefix}status") for r in rows]
        if not any(s == "ok" for s in statuses) and not any(s == "dropped" for s in statuses):
            continue
        ok = [r for r in rows if r.get(f"{prefix}status") == "ok"]
        dropped = sum(s == "dropped" for s in statuses)
        undecodable = sum(s == "undecodable" for s in statuses)
        decodable = len(rows) - undecodable
        busy_s = sum(r[f"{prefix}end_to_end_ms"] - r.get(f"{prefix}queue_wait_ms", 0.0) for r in ok) / 1e3
        s: dict[str, Any] = {
            "processed": len(ok),
            "dropped": dropped,
            "undecodable": undecodable,
            "drop_rate": dropped / decodable if decodable else None,
            "latency_ms": _stat([r[f"{prefix}end_to_end_ms"] for r in ok]),
            "inference_ms": _stat([r[f"{prefix}inference_ms"] for r in ok]),
            "throughput_fps": len(ok) / busy_s if busy_s > 0 else None,
            "energy_per_frame_j": _mean([r.get(f"{prefix}energy_j") for r in ok]),
            "synaptic_ops_per_frame": _mean([r.get(f"{prefix}synaptic_ops") for r in ok]),
            "mean_spike_rate": _mean([r.get(f"{prefix}spike_rate") for r in ok]),
            "timesteps": ok[0][f"{prefix}timesteps"] if ok else run.timesteps,
        }
        if run.latency_budget_ms:  # T per frame within the budget: its histogram and the misses
            hist: dict[int, int] = {}
            for r in ok:
                hist[int(r[f"{prefix}timesteps"])] = hist.get(int(r[f"{prefix}timesteps"]), 0) + 1
            s["timesteps_histogram"] = dict(sorted(hist.items()))
            s["budget_miss_rate"] = _mean([float(r.get(f"{prefix}budget_missed", False)) for r in ok])
            s["timesteps"] = None
        if name == "dehaze":
            s["quality"] = {
                k: _mean([r.get(k) for r in ok]) for k in QUALITY_KEYS[:-1] if any(k in r for r in ok)
            }
        else:
            areas = list(dict.fromkeys(k for r in ok for k in r if k.startswith("area_")))  # class-id order
            s["area_fractions"] = {k[5:]: _mean([r.get(k) for r in ok]) for k in areas}
            if run.confusion is not None:
                from snn_perception.offline.seg_metrics import scores_from_confusion

                names = [k[5:] for k in areas] if len(areas) == run.confusion.shape[0] else None
                full = scores_from_confusion(run.confusion, names)  # the evaluate tool's convention
                s["quality"] = {
                    "miou_dataset": metrics.miou(run.confusion),
                    "miou_frame_mean": _mean([r.get("seg_miou") for r in ok]),
                    "pixel_acc": full["pixel_acc"],
                    "per_class_iou": full["per_class_iou"],
                }
        out[name] = s
    out["paced_rate"] = rate
    return out


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if math.isfinite(f) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, Path):
        return str(x)
    return x


@dataclass
class ReportFiles:
    out: Path
    json: Path
    csv: Path
    html: Path
    markdown: Path | None = None
    plots: list[Path] = field(default_factory=list)
    contact_sheet: Path | None = None
    summaries: list[dict[str, Any]] = field(default_factory=list)


#: every file :func:`write_report` may write, and the folder ros mode records into
REPORT_FILES = (
    "report.json",
    "frames.csv",
    "report.html",
    "report.md",
    "latency_time.png",
    "latency_hist.png",
    "energy.png",
    "quality.png",
    "tradeoff.png",
    "contact_sheet.jpg",
)
RECORDED_DIR = "recorded"


def check_report_dir(out: Path, bag: Path | None = None, given: Path | None = None) -> None:
    """``--out`` must be a folder (new, or an earlier report's) that can be created, outside the bag.

    Only checks, creates nothing: run before the weights are loaded or a frame is played.
    ``given``: the ``--out`` the user gave when ``out`` is a folder inside it (the demo's report/).
    """
    import os

    from snn_perception.replay.common import ReplayError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ReplayError(
            f"--out {out} is a file; give a folder (new, or an earlier report's with --overwrite)"
        )
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ReplayError(f"--out {out}: {parent} is a file, not a folder; give a folder")
            if not out.exists() and not os.access(parent, os.W_OK | os.X_OK):
                raise ReplayError(
                    f"--out {out}: cannot create it in {parent} (permission denied); "
                    "choose a folder you can write to"
                )
            break
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise ReplayError(f"--out {out}: the folder is not writable; choose a folder you can write to")
    if bag is None or not Path(bag).exists():
        return  # a missing bag is reported by the replay itself
    folder = Path(bag).resolve()
    folder = folder.parent if folder.is_file() else folder
    target = out.resolve()
    if target == folder or folder in target.parents:
        where = "is the bag folder" if target == folder else f"is inside the bag folder {bag}"
        if given is not None:
            where = f"would put the report ({out}) inside the bag folder {bag}"
        raise ReplayError(
            f"--out {given or out} {where}; a bag folder holds only the bag: give a report folder outside it"
        )


def clear_previous_report(out: Path, overwrite: bool) -> None:
    """Refuse to mix with an earlier replay's report in ``out``, or with ``overwrite`` remove it.

    Only what this tool writes is removed (:data:`REPORT_FILES` and ``recorded/``); anything else
    in ``out`` stays. Checked before any frame is played, so a refusal costs nothing.
    """
    from snn_perception.replay.common import ReplayError

    out = Path(out)
    previous = [out / n for n in (*REPORT_FILES, RECORDED_DIR) if (out / n).exists()]
    if not previous:
        return
    if not overwrite:
        names = ", ".join(p.name for p in previous[:3]) + (", …" if len(previous) > 3 else "")
        raise ReplayError(
            f"--out {out} already holds a replay report ({names}); pass --overwrite to replace it, "
            "or choose another --out"
        )
    for p in previous:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()


# -- plots -------------------------------------------------------------------------------------


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
    return plots


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


# -- tables ------------------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def summary_table(summaries: list[dict[str, Any]]) -> list[list[str]]:
    """Rows of the printed/HTML summary: one line per (run, model)."""
    header = [
        "run",
        "model",
        "T",
        "frames",
        "processed",
        "dropped",
        "undecodable",
        "mean ms",
        "p95 ms",
        "fps",
        "mJ/frame",
        "spike rate",
        "PSNR in→out",
        "SSIM in→out",
        "UIQM in→out",
        "mIoU",
    ]
    lines = [header]
    for s in summaries:
        for name in ("dehaze", "segment"):
            m = s.get(name)
            if m is None:
                continue
            q = m.get("quality", {})

            def pair(a: str, b: str, d: int = 2, q=q) -> str:
                return f"{_fmt(q.get(a), d)}→{_fmt(q.get(b), d)}" if q.get(b) is not None else "–"

            energy = m["energy_per_frame_j"]
            lines.append(
                [
                    s["label"],
                    name,
                    _t_cell(m),
                    str(s["frames"]),
                    str(m["processed"]),
                    str(m["dropped"]),
                    str(m["undecodable"]),
                    _fmt(m["latency_ms"]["mean"], 1),
                    _fmt(m["latency_ms"]["p95"], 1),
                    _fmt(m["throughput_fps"], 1),
                    _fmt(energy * 1e3 if energy is not None else None, 3),
                    _fmt(m["mean_spike_rate"], 3),
                    pair("psnr_raw", "psnr_out"),
                    pair("ssim_raw", "ssim_out", 3),
                    pair("uiqm_raw", "uiqm_out"),
                    _fmt(q.get("miou_dataset"), 3),
                ]
            )
    return lines


def _t_cell(m: dict[str, Any]) -> str:
    """The T column: the fixed T, or for a budget run the T histogram and the share of late frames."""
    hist = m.get("timesteps_histogram")
    if not hist:
        return _fmt(m.get("timesteps"))
    miss = m.get("budget_miss_rate")
    late = f", {miss:.0%} late" if miss is not None else ""
    return " ".join(f"{t}×{n}" for t, n in hist.items()) + late


def format_table(lines: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
    out = []
    for j, r in enumerate(lines):
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# -- writing -----------------------------------------------------------------------------------


def _csv_rows(result: ReplayResult) -> tuple[list[str], list[dict[str, Any]]]:
    rows = []
    for run in result.runs:
        for r in run.rows:
            rows.append({"run": run.label, **r})
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    return keys, rows


def write_report(result: ReplayResult, out: Path) -> ReportFiles:
    """Write every report file into ``out`` (created) and return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summaries = [summarize(run, result.config.rate) for run in result.runs]
    files = ReportFiles(
        out=out,
        json=out / "report.json",
        csv=out / "frames.csv",
        html=out / "report.html",
        summaries=summaries,
    )
    cfg = result.config
    doc = {
        "bag": str(result.topics.info.path),
        "storage": result.topics.info.storage,
        "mode": cfg.mode,
        "topics": {
            "image": result.topics.image,
            "reference": result.topics.reference,
            "mask": result.topics.mask,
        },
        "frames_in_bag": result.topics.frames,
        "rate": cfg.rate,
        "as_fast_as_possible": cfg.rate is None,
        "models": result.models,
        "partial": result.interrupted,
        "notes": result.notes,
        "summary": summaries,
        "runs": [
            {"label": r.label, "timesteps": r.timesteps, "interrupted": r.interrupted, "frames": r.rows}
            for r in result.runs
        ],
    }
    files.json.write_text(json.dumps(_json_safe(doc), indent=1))
    keys, rows = _csv_rows(result)
    with files.csv.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys or ["run"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _csv_value(r.get(k)) for k in keys})
    files.plots = write_plots(result, out, summaries)
    files.contact_sheet = write_contact_sheet(result, out)
    files.html.write_text(_html(result, files, summaries))
    files.markdown = out / "report.md"
    files.markdown.write_text(_markdown(result, files, summaries))
    return files


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return "" if math.isnan(v) else v
    return v


def _html(result: ReplayResult, files: ReportFiles, summaries: list[dict[str, Any]]) -> str:
    cfg = result.config
    esc = html.escape
    table = summary_table(summaries)
    head = "".join(f"<th>{esc(c)}</th>" for c in table[0])
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in table[1:])
    models = "".join(
        f"<li><b>{esc(task)}</b>: {esc(m['arch'])}/{esc(m['variant'])}, weights {esc(m['weights_id'])}, "
        f"default T={m['default_timesteps']}</li>"
        for task, m in result.models.items()
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in result.notes)
    if result.interrupted:
        notes += "<li><b>Partial report: the replay was interrupted.</b></li>"
    imgs = "".join(
        f'<figure><img src="{esc(p.name)}" alt="{esc(p.stem)}"><figcaption>{esc(p.stem)}'
        f"</figcaption></figure>"
        for p in files.plots
    )
    sheet = ""
    if files.contact_sheet is not None:
        sheet = (
            "<h2>Sample frames</h2><p>Each row: raw input | enhanced | mask overlay | reference "
            "(those available).</p>"
            f'<img class="wide" src="{esc(files.contact_sheet.name)}" alt="contact sheet">'
        )
    pace = "as fast as possible" if cfg.rate is None else f"{cfg.rate}× bag rate"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>snn_perception replay report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px;color:#222}}
table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}th{{background:#eef}}
figure{{display:inline-block;margin:6px}}img{{max-width:560px}}img.wide{{max-width:100%}}
code{{background:#f4f4f4;padding:1px 4px}}
</style></head><body>
<h1>Replay report</h1>
<p>Bag <code>{esc(str(result.topics.info.path))}</code> ({esc(result.topics.info.storage)}), topic
<code>{esc(result.topics.image)}</code>, {result.topics.frames} frames; reference
<code>{esc(str(result.topics.reference))}</code>; mode <b>{esc(cfg.mode)}</b>, {esc(pace)}.</p>
<ul>{models}</ul>
<ul>{notes}</ul>
<h2>Summary</h2>
<table><tr>{head}</tr>{body}</table>
<p>Latency: arrival of the frame (its bag stamp, scaled by the rate) to the result. Energy: synaptic
operations × 0.9 pJ + analog MACs × 4.6 pJ (45 nm, Horowitz 2014). PSNR/SSIM against the reference
topic; UIQM (Panetta et al. 2016) and UCIQE (Yang &amp; Sowmya 2015) need no reference. Quality
means are over the processed frames.</p>
<p>Data: <a href="{esc(files.json.name)}">report.json</a> (every per-frame row and the summary),
<a href="{esc(files.csv.name)}">frames.csv</a>.</p>
<h2>Plots</h2>
{imgs}
{sheet}
</body></html>
"""


def _markdown(result: ReplayResult, files: ReportFiles, summaries: list[dict[str, Any]]) -> str:
    """The same summary as Markdown (renders on GitHub; used for the committed sample reports)."""
    cfg = result.config
    table = summary_table(summaries)
    lines = [
        "# Replay report",
        "",
        f"Bag `{result.topics.info.path.name}` ({result.topics.info.storage}), "
        f"topic `{result.topics.image}`, "
        f"{result.topics.frames} frames, reference `{result.topics.reference}`; mode **{cfg.mode}**, "
        + ("as fast as possible." if cfg.rate is None else f"{cfg.rate}× bag rate."),
        "",
    ]
    for task, m in result.models.items():
        lines.append(
            f"- {task}: {m['arch']}/{m['variant']}, weights `{m['weights_id']}`, "
            f"default T={m['default_timesteps']}"
        )
    lines += [f"- note: {n}" for n in result.notes]
    if result.interrupted:
        lines.append("- **partial report: the replay was interrupted**")
    lines += ["", "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(r) + " |" for r in table[1:]]
    lines += [
        "",
        "Latency: frame arrival (bag stamp scaled by the rate) to result. Energy: 0.9 pJ per synaptic "
        "operation + 4.6 pJ per analog MAC (45 nm). Quality means are over the processed frames.",
        "",
    ]
    lines += [f"![{p.stem}]({p.name})" for p in files.plots]
    if files.contact_sheet is not None:
        lines += [
            "",
            f"![sample frames: raw | enhanced | mask overlay | reference]({files.contact_sheet.name})",
        ]
    return "\n".join(lines) + "\n"


_LINK = re.compile(r'(?:src|href)="([^"]+)"')


def html_links(path: Path) -> list[str]:
    """Every file an HTML report references (for the 'only existing files' check)."""
    return _LINK.findall(Path(path).read_text())
