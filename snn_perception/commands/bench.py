"""``snn-perception bench``: latency, memory, fps and energy of a model through the engine.

Every configuration (size × timesteps) is measured twice through :class:`Engine` — the path the
robot runs — with operation counting off (the fast path) and on (reports spikes, SOPs, MACs and
energy per frame, and what counting costs). Latency is the median over ``--runs`` frames after
``--warmup`` frames; other processes on the machine make single runs noisy, hence the median.
The off and on runs alternate, so what counting costs is measured under the same conditions.

Models are a table (:data:`MODELS`): adding one is a line naming its task and default weights.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snn_perception.commands import add_device_argument, add_examples, check_threads, joined, timestep_list


@dataclass(frozen=True)
class BenchModel:
    task: str
    #: the checkpoint architectures this model name stands for (``--weights`` must hold one)
    archs: tuple[str, ...]
    #: weights name or path; None = the best available default for the task
    default_weights: str | None = None


#: model name → how to load it. Other models add their entry here.
MODELS: dict[str, BenchModel] = {
    "dhz": BenchModel(task="dehaze", archs=("snntrans_dhz",)),
    # the spiking segmenter (v2 LiteUNet, or the width-W Spiking-UNet) and the same network as an
    # ANN, for the T-pass comparison
    "spiking_unet": BenchModel(task="segment", archs=("spiking_lite_unet", "spiking_unet")),
    "unet_ann": BenchModel(task="segment", archs=("lite_unet", "unet"), default_weights="unet_suim_ann"),
}


def check_model_matches(model: str, arch: str, task: str, weights: str | None) -> None:
    """The table and JSON are labelled with ``--model``, so weights of another network are refused."""
    spec = MODELS[model]
    if arch in spec.archs and task == spec.task:
        return
    fits = [name for name, m in MODELS.items() if arch in m.archs and m.task == task]
    hint = f"; use --model {fits[0]}" if fits else ""
    raise ValueError(
        f"--weights {weights} holds a {task} model ({arch}) but --model {model} is a {spec.task} "
        f"model ({' or '.join(spec.archs)}){hint}, or pass {model} weights"
    )


EXAMPLES = (
    "snn-perception bench  # dhz at 256 and 512 px, T=4, 2 threads, counting off and on",
    "snn-perception bench --model spiking_unet --size 256 --timesteps 1,2,4,8 --json bench.json",
    "snn-perception bench --size 1080x1920 --timesteps 1 4 --runs 3 --no-counting",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES)
    parser.add_argument("--model", default="dhz", help=f"model to measure ({', '.join(MODELS)})")
    parser.add_argument("--weights", default=None, help="weights name or path (default: the model's default)")
    parser.add_argument(
        "--size", nargs="+", default=["256", "512"], help="square sizes or HxW (default 256 512)"
    )
    parser.add_argument(
        "--timesteps",
        nargs="+",
        type=timestep_list,
        default=None,
        help="timesteps to measure, e.g. 1 2 4 8 or 1,2,4,8 (default 4; none for unet_ann, which runs once)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per configuration (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument(
        "--image", type=Path, default=None, help="image to run (default: a shared EUVP image)"
    )
    add_device_argument(parser)
    parser.add_argument(
        "--precision",
        choices=["fp32", "tf32", "bf16"],
        default="fp32",
        help="fp32 (exact on every device, default), tf32 (CUDA) or bf16: opt-in, inexact, "
        "each also reports its PSNR against fp32",
    )
    parser.add_argument("--no-counting", action="store_true", help="skip the stats-on measurement")
    parser.add_argument("--json", type=Path, default=None, help="write the results table as JSON")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _bench_image(path: Path | None) -> tuple[np.ndarray, str]:
    """The image to run: given, else the first shared EUVP image, else a seeded synthetic scene."""

    if path is None:
        from snn_perception.runtime.weights import external_dirs

        for d in external_dirs():
            raw = d.parent / "data" / "euvp_test23" / "raw"
            if raw.is_dir():
                imgs = sorted(raw.glob("*.jpg"))
                if imgs:
                    path = imgs[0]
                    break
    if path is not None:
        from snn_perception.runtime.image_codec import ImageDecodeError, read_image_file

        try:
            return read_image_file(path), str(path)
        except ImageDecodeError as exc:
            raise ValueError(f"--image {exc}") from None
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:256] / 255.0
    img = np.stack([0.1 + 0.3 * xx, 0.4 + 0.3 * yy, 0.5 + 0.2 * xx * yy], -1)
    img = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1)
    return (img * 255).astype(np.uint8), "synthetic (seed 0)"


def _agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """PSNR (dB, outputs clipped to [0, 1] as images) and max abs difference of two outputs."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    psnr = float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)
    return psnr, float(np.abs(a - b).max())


def _time_runs(
    engine, image: np.ndarray, timesteps: int | None, counts: tuple[bool, ...], runs: int, warmup: int
) -> dict[bool, tuple[list[float], object, float]]:
    """Per counting setting: run times, the last run's stats and the peak RSS after its warm-up.

    With counting off and on, the timed runs alternate (off, on, then on, off, ...), so both
    medians see the same machine conditions: on a shared or virtual machine the speed drifts by
    ±10 % over seconds, more than counting costs, and back-to-back blocks would compare drifts.
    """
    rss = {}
    for count in counts:
        for _ in range(warmup):
            engine.run(image, timesteps=timesteps, count_ops=count)
        rss[count] = _peak_rss_mib()
    times: dict[bool, list[float]] = {c: [] for c in counts}
    stats: dict[bool, object] = {}
    for i in range(runs):
        for count in counts if i % 2 == 0 else counts[::-1]:
            t0 = time.perf_counter()
            stats[count] = engine.run(image, timesteps=timesteps, count_ops=count).stats
            times[count].append(time.perf_counter() - t0)
    return {c: (times[c], stats[c], rss[c]) for c in counts}


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ValueError as exc:  # WeightsError is a ValueError too
        print(f"snn-perception bench: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import torch

    from snn_perception.runtime.engine import Engine, EngineConfig
    from snn_perception.runtime.paths import check_json_output
    from snn_perception.runtime.preprocess import image_to_tensor, parse_hw, resize

    if args.model not in MODELS:
        raise ValueError(f"--model {args.model!r}: known models are {', '.join(MODELS)}")
    sizes = list(dict.fromkeys(parse_hw(s) for s in args.size))  # each measured once, in the given order
    small = [f"{h}x{w}" for h, w in sizes if min(h, w) < 8]
    if small:
        raise ValueError(f"--size {', '.join(small)}: each side must be at least 8 pixels, e.g. 256")
    steps: list[int | None] = list(dict.fromkeys(joined(args.timesteps or [[4]])))  # each once, in order
    check_threads(args.threads)
    if args.runs < 1 or args.warmup < 0:
        raise ValueError(f"--runs {args.runs}, --warmup {args.warmup}: need --runs ≥ 1 and --warmup ≥ 0")
    inputs = [p for p in (args.image, Path(args.weights) if args.weights else None) if p is not None]
    check_json_output(args.json, inputs)
    torch.set_num_threads(args.threads)
    spec = MODELS[args.model]
    weights = args.weights or spec.default_weights
    # named weights load as they are, so the check below can name the --model that fits them
    task = None if weights else spec.task
    engine = Engine.load(weights, EngineConfig(device=args.device, precision=args.precision), task=task)
    check_model_matches(args.model, engine.info.arch, engine.info.task, weights)
    if not engine.info.spiking:
        if args.timesteps:
            raise ValueError(
                f"--timesteps {','.join(map(str, steps))}: {args.model} ({weights}) is an ANN, which runs "
                "once per frame and has no timesteps; drop --timesteps"
            )
        steps = [None]  # one row per size, T shown as "–"
    exact = None if args.precision == "fp32" else Engine.load(weights, EngineConfig(device=args.device), task)
    image, image_name = _bench_image(args.image)
    info = engine.info
    print(
        f"model {args.model} ({info.label}, weights {info.weights_id}), "
        f"device {engine.device}, threads {torch.get_num_threads()}, image {image_name}, "
        f"median of {args.runs} runs, precision {args.precision}"
    )
    header = (
        f"{'size':>9} {'T':>3} {'stats':>5} {'median ms':>10} {'p90 ms':>8} {'fps':>6} "
        f"{'SOPs/frame':>11} {'MACs/frame':>11} {'energy mJ':>9} {'spike rate':>10} {'peak RSS MiB':>12}"
    )
    print(header)
    rows = []
    for hw in sizes:
        # the model-size input made exactly as `enhance --size` / `replay --size` make it (the
        # engine's antialiased bilinear resize), so their SOPs and energy per frame match bench's
        frame = resize(image_to_tensor(image), hw)[0].permute(1, 2, 0).contiguous().numpy()
        for t in steps:
            counts = (False,) if args.no_counting else (False, True)
            measured = _time_runs(engine, frame, t, counts, args.runs, args.warmup)
            for count in counts:
                times, stats, rss = measured[count]
                med = statistics.median(times)
                p90 = sorted(times)[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
                row = {
                    "model": args.model,
                    "size": list(hw),
                    "timesteps": t,
                    "stats": count,
                    "median_ms": med * 1e3,
                    "p90_ms": p90 * 1e3,
                    "fps": 1.0 / med,
                    "runs_ms": [x * 1e3 for x in times],
                    "peak_rss_mib": rss,
                }
                if count and stats is not None:
                    row.update(
                        synaptic_ops=stats.synaptic_ops,
                        analog_macs=stats.analog_macs,
                        energy_uj=stats.energy_j * 1e6,  # kept for existing readers
                        energy_mj=stats.energy_j * 1e3,  # the unit every table and report shows
                        mean_spike_rate=stats.mean_spike_rate,
                    )
                rows.append(row)
                ops = (
                    f"{row['synaptic_ops']:11.3e} {row['analog_macs']:11.3e} {row['energy_mj']:9.3f} "
                    f"{row['mean_spike_rate']:10.3f}"
                    if count
                    else f"{'-':>11} {'-':>11} {'-':>9} {'-':>10}"
                )
                print(
                    f"{hw[0]:>4}x{hw[1]:<4} {'–' if t is None else t:>3} {'on' if count else 'off':>5} "
                    f"{med * 1e3:10.1f} "
                    f"{p90 * 1e3:8.1f} {1 / med:6.1f} {ops} {row['peak_rss_mib']:12.0f}"
                )
            if not args.no_counting:
                off, on = rows[-2]["median_ms"], rows[-1]["median_ms"]
                if on >= off:
                    print(f"{'':>9} counting costs {on - off:+.1f} ms ({(on / off - 1) * 100:+.0f} %)")
                else:  # a negative cost is run-to-run noise, not a speed-up
                    print(
                        f"{'':>9} counting costs nothing measurable here ({on - off:+.1f} ms: noise; "
                        "more --runs narrow it)"
                    )
            if exact is not None:
                psnr, max_abs = _agreement(
                    engine.run(frame, timesteps=t).output, exact.run(frame, timesteps=t).output
                )
                for row in rows[-(1 if args.no_counting else 2) :]:
                    row.update(psnr_vs_fp32_db=psnr, max_abs_vs_fp32=max_abs)
                print(f"{'':>9} {args.precision} vs fp32 output: PSNR {psnr:.1f} dB, max |Δ| {max_abs:.4f}")
    if args.json is not None:
        doc = {
            "model": args.model,
            "arch": info.arch,
            "variant": info.variant,
            "weights_id": info.weights_id,
            "device": str(engine.device),
            "threads": torch.get_num_threads(),
            "image": image_name,
            "precision": args.precision,
            "rows": rows,
        }
        args.json.write_text(json.dumps(doc, indent=2))
    return 0
