"""Replay summaries: one run's frames reduced to counts, latency statistics, quality and energy.

``summarize`` is what ``report.json`` holds per run and what every table, plot and printed line is
drawn from; ``summary_table``/``format_table`` turn summaries into the printed and HTML table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from snn_perception.replay.common import RunResult

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
                from snn_perception.offline.seg_metrics import miou, scores_from_confusion

                names = [k[5:] for k in areas] if len(areas) == run.confusion.shape[0] else None
                full = scores_from_confusion(run.confusion, names)  # the evaluate tool's convention
                s["quality"] = {
                    "miou_dataset": miou(run.confusion),
                    "miou_frame_mean": _mean([r.get("seg_miou") for r in ok]),
                    "pixel_acc": full["pixel_acc"],
                    "per_class_iou": full["per_class_iou"],
                }
        out[name] = s
    out["paced_rate"] = rate
    return out


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


#: a run "keeps up" with a paced stream when at most this share of its decodable frames was dropped
KEEPS_UP = 0.10


def _quality_key(summaries: list[dict[str, Any]], model: str) -> tuple[str, str] | None:
    """``(summary key, name)`` a model's runs are ranked by: PSNR out (else UIQM out) for the
    dehazer, dataset mIoU for the segmenter; None when no run has it."""
    keys = {"dehaze": (("psnr_out", "PSNR"), ("uiqm_out", "UIQM")), "segment": (("miou_dataset", "mIoU"),)}
    for key, name in keys[model]:
        if any(s.get(model, {}).get("quality", {}).get(key) is not None for s in summaries):
            return key, name
    return None


def recommendation(summaries: list[dict[str, Any]]) -> str | None:
    """One sentence naming the setting to use and its numbers: the dehazer run with the best quality
    (PSNR out, else UIQM out) among those that keep up with the stream (≤ 10 % dropped), or, when
    none does, the one that drops least. ``None`` when no run has a dehaze quality to rank by."""
    runs = [s for s in summaries if s.get("dehaze", {}).get("processed")]
    qk = _quality_key(runs, "dehaze")
    if qk is None:
        return None
    key, name = qk
    runs = [s for s in runs if s["dehaze"]["quality"].get(key) is not None]
    keeping = [s for s in runs if (s["dehaze"]["drop_rate"] or 0.0) <= KEEPS_UP]
    if keeping:
        best = max(keeping, key=lambda s: s["dehaze"]["quality"][key])
        why = f"the best quality among the {len(keeping)} run(s) that keep up (≤ {KEEPS_UP:.0%} dropped)"
    else:
        best = min(runs, key=lambda s: s["dehaze"]["drop_rate"] or 0.0)
        why = f"no run kept up (each dropped over {KEEPS_UP:.0%}); this one drops least"
    m = best["dehaze"]
    q = m["quality"]
    unit = " dB" if key == "psnr_out" else ""
    raw = q.get(key.replace("_out", "_raw"))
    parts = [f"{name} {q[key]:.2f}{unit}" + (f" (input {raw:.2f})" if raw is not None else "")]
    if q.get("ssim_out") is not None:
        parts.append(f"SSIM {q['ssim_out']:.3f}")
    if m["latency_ms"]["p95"] is not None:
        parts.append(f"p95 latency {m['latency_ms']['p95']:.0f} ms")
    parts.append(f"{m['drop_rate'] or 0.0:.0%} of frames dropped")
    if m["energy_per_frame_j"] is not None:
        parts.append(f"{m['energy_per_frame_j'] * 1e3:.2f} mJ per frame")
    seg = best.get("segment", {}).get("quality", {}).get("miou_dataset")
    if seg is not None:
        parts.append(f"segmentation mIoU {seg:.3f}")
    return f"Recommended: {best['label']} — {', '.join(parts)}: {why}."


def reading_notes(summaries: list[dict[str, Any]]) -> list[str]:
    """Plain sentences that read the fixed-T sweep for a person: per model, the T with the best
    quality and what the largest T costs beyond it; and which runs cannot keep up with the stream."""
    notes = []
    for model in ("dehaze", "segment"):
        qk = _quality_key(summaries, model)
        if qk is None:
            continue
        key, name = qk
        fixed = [
            s
            for s in summaries
            if not s.get("latency_budget_ms")
            and s.get("timesteps") is not None
            and s.get(model, {}).get("quality", {}).get(key) is not None
        ]
        if len(fixed) < 2:
            continue
        q = {s["timesteps"]: s[model]["quality"][key] for s in fixed}
        best = max(fixed, key=lambda s: q[s["timesteps"]])
        top = max(fixed, key=lambda s: s["timesteps"])
        unit, digits = (" dB", 2) if name == "PSNR" else ("", 3)
        value = f"{q[best['timesteps']]:.{digits}f}{unit}"
        text = f"{model}: the best {name} of the sweep is T={best['timesteps']} ({value})"
        e_best, e_top = best[model]["energy_per_frame_j"], top[model]["energy_per_frame_j"]
        if top is not best and e_best and e_top:
            loss = q[best["timesteps"]] - q[top["timesteps"]]
            text += (
                f"; T={top['timesteps']} uses {e_top / e_best:.1f}× its energy per frame and scores "
                f"{loss:.{digits}f}{unit} {name} lower"
            )
        notes.append(text + ".")
    late = [
        f"{s['label']} ({model})"
        for s in summaries
        for model in ("dehaze", "segment")
        if (s.get(model, {}).get("drop_rate") or 0.0) > KEEPS_UP
    ]
    if late:
        notes.append(
            f"Dropping over {KEEPS_UP:.0%} of frames, these cannot keep up with the stream on this machine: "
            f"{', '.join(late)}; their quality is scored on the frames they did process."
        )
    return notes
