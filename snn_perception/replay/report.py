"""Replay reports: the report folder's policy and its files (report.json, frames.csv, report.html).

Summaries come from :mod:`~snn_perception.replay.summary`, plots and the contact sheet from
:mod:`~snn_perception.replay.plots`.

Every number in the HTML comes from ``report.json``, which holds every per-frame row, so a user can
recompute anything. Plots use matplotlib's Agg backend (no display needed); the HTML embeds no
external asset and links only files this module wrote (checked by :func:`html_links`).
"""

from __future__ import annotations

import contextlib
import csv
import html
import json
import math
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snn_perception.replay.common import ReplayResult
from snn_perception.replay.plots import CAPTIONS, WIDE, write_contact_sheet, write_legend, write_plots
from snn_perception.replay.summary import reading_notes, recommendation, summarize, summary_table


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
    legend: Path | None = None
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
    "budget.png",
    "contact_sheet.jpg",
    "legend.png",
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


@contextlib.contextmanager
def replacing_previous_report(out: Path, overwrite: bool) -> Iterator[None]:
    """Refuse to mix with an earlier replay's report in ``out``, or with ``overwrite`` replace it.

    The refusal comes before any frame is played, so it costs nothing. With ``overwrite`` the earlier
    report is set aside (moved into a hidden folder of ``out``) while the new run works, deleted once
    the block ends without an error and put back if it raises: a run that fails (a topic not in the
    bag, missing weights, no ROS) loses nothing. Only what this tool writes is touched
    (:data:`REPORT_FILES` and ``recorded/``); anything else in ``out`` stays.
    """
    from snn_perception.replay.common import ReplayError

    out = Path(out)
    previous = [out / n for n in (*REPORT_FILES, RECORDED_DIR) if (out / n).exists()]
    if previous and not overwrite:
        names = ", ".join(p.name for p in previous[:3]) + (", …" if len(previous) > 3 else "")
        raise ReplayError(
            f"--out {out} already holds a replay report ({names}); pass --overwrite to replace it, "
            "or choose another --out"
        )
    if not previous:
        yield
        return
    aside = Path(tempfile.mkdtemp(prefix=".previous-report-", dir=out))
    for p in previous:
        p.rename(aside / p.name)
    try:
        yield
    except BaseException:
        for name in (*REPORT_FILES, RECORDED_DIR):  # the failed run's own files, then the old ones back
            _remove(out / name)
        for p in aside.iterdir():
            p.rename(out / p.name)
        aside.rmdir()
        raise
    shutil.rmtree(aside)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


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
    files.legend = write_legend(result, summaries, out)
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
        f"<li><b>{esc(task)}</b>: {esc(_model_label(m))}, weights {esc(m['weights_id'])}, "
        f"default T={m['default_timesteps']}</li>"
        for task, m in result.models.items()
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in result.notes)
    if result.interrupted:
        notes += "<li><b>Partial report: the replay was interrupted.</b></li>"
    imgs = "".join(
        f'<figure class="{"wide" if p.stem in WIDE else "plot"}"><img src="{esc(p.name)}" '
        f'alt="{esc(CAPTIONS.get(p.stem, p.stem))}"><figcaption>{esc(CAPTIONS.get(p.stem, p.stem))}'
        f"</figcaption></figure>"
        for p in files.plots
    )
    sheet = ""
    if files.contact_sheet is not None:
        sheet = (
            "<h2>Sample frames</h2><p>From the run at the model's default T (the setting a robot runs "
            "unless told otherwise). Each row: raw input | enhanced | mask overlay | reference (those "
            "available); a grey tile marks a frame that run dropped.</p>"
            f'<img class="wide" src="{esc(files.contact_sheet.name)}" alt="contact sheet">'
        )
    if files.legend is not None:
        sheet += (
            "<h2>Segmentation classes</h2><p>Colour of each class in the mask overlays and its share of "
            f'the frame.</p><img src="{esc(files.legend.name)}" alt="class legend">'
        )
    pace = "as fast as possible" if cfg.rate is None else f"{cfg.rate}× bag rate"
    ref_topic = result.topics.reference
    reference = f"reference <code>{esc(ref_topic)}</code>" if ref_topic else "no reference topic"
    advice = recommendation(summaries)
    advice_html = f'<p class="advice"><b>{esc(advice)}</b></p>' if advice else ""
    notes_read = reading_notes(summaries)
    reading = (
        "<h3>Reading it</h3><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes_read) + "</ul>"
        if notes_read
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>snn_perception replay report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px;color:#222}}
table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}th{{background:#eef}}
figure{{margin:14px 0}}figure img{{max-width:100%}}figure.plot img{{max-width:860px}}
figcaption{{font-size:14px;color:#444;max-width:860px}}img.wide{{max-width:100%}}
code{{background:#f4f4f4;padding:1px 4px}}.advice{{font-size:16px;background:#eef6ee;padding:8px}}
</style></head><body>
<h1>Replay report</h1>
{advice_html}
<p>Bag <code>{esc(str(result.topics.info.path))}</code> ({esc(result.topics.info.storage)}), topic
<code>{esc(result.topics.image)}</code>, {result.topics.frames} frames; {reference}; mode
<b>{esc(cfg.mode)}</b>, {esc(pace)}.</p>
<ul>{models}</ul>
{f"<ul>{notes}</ul>" if notes else ""}
<h2>Summary</h2>
<table><tr>{head}</tr>{body}</table>
{reading}
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


def _model_label(m: dict[str, Any]) -> str:
    """``arch/variant``, or the arch alone when the weights name no variant."""
    variant = m.get("variant")
    return f"{m['arch']}/{variant}" if variant and variant != "None" else str(m["arch"])


def _markdown(result: ReplayResult, files: ReportFiles, summaries: list[dict[str, Any]]) -> str:
    """The same summary as Markdown (renders on GitHub; used for the committed sample reports)."""
    cfg = result.config
    table = summary_table(summaries)
    lines = [
        "# Replay report",
        "",
        f"Bag `{result.topics.info.path.name}` ({result.topics.info.storage}), "
        f"topic `{result.topics.image}`, "
        f"{result.topics.frames} frames, "
        + (f"reference `{result.topics.reference}`" if result.topics.reference else "no reference topic")
        + f"; mode **{cfg.mode}**, "
        + ("as fast as possible." if cfg.rate is None else f"{cfg.rate}× bag rate."),
        "",
    ]
    advice = recommendation(summaries)
    if advice:
        lines[1:1] = ["", f"**{advice}**"]
    for task, m in result.models.items():
        lines.append(
            f"- {task}: {_model_label(m)}, weights `{m['weights_id']}`, default T={m['default_timesteps']}"
        )
    lines += [f"- note: {n}" for n in result.notes]
    if result.interrupted:
        lines.append("- **partial report: the replay was interrupted**")
    lines += ["", "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(r) + " |" for r in table[1:]]
    notes_read = reading_notes(summaries)
    if notes_read:
        lines += ["", "Reading it:", *(f"- {n}" for n in notes_read)]
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
