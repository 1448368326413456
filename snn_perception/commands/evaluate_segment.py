"""``evaluate --task segment``: mIoU, per-class IoU, pixel accuracy and F1 of U-Nets and Spiking-UNets.

Images and masks are resized to the model's input size (masks nearest-neighbour) and scored with
one confusion matrix over the whole split. A Spiking-UNet is scored at every requested T from a
single run of max(T) steps (its output is available after every step).
"""

from __future__ import annotations

import argparse
import json


def add_segment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=4, help="segment: images per forward pass")


def format_rows(rows: list[dict]) -> str:
    if not rows:
        return "(no results)"
    classes = list(rows[0]["per_class_iou"])
    head = f"{'model':<28} {'T':>3} {'mIoU':>6} {'pixAcc':>6} {'F1':>6}  " + " ".join(c[:6] for c in classes)
    lines = [head, "-" * len(head)]
    for r in rows:
        per = " ".join(f"{(v if v is not None else float('nan')):6.3f}" for v in r["per_class_iou"].values())
        t = "-" if r["timesteps"] is None else str(r["timesteps"])
        lines.append(
            f"{r['model'][:28]:<28} {t:>3} {r['miou']:6.3f} {r['pixel_acc']:6.3f} {r['mean_f1']:6.3f}  {per}"
        )
    return "\n".join(lines)


def load_segmenter(name: str):
    """(model, checkpoint) of a U-Net or Spiking-UNet segmenter; weights of another task are refused by task.

    ``load_unet`` alone would only say the architecture is unexpected, not that ``dhz`` is a dehaze model.
    """
    from snn_perception.offline.convert import load_unet
    from snn_perception.runtime.checkpoint import WeightsError, load_checkpoint
    from snn_perception.runtime.engine import ARCH_TASKS
    from snn_perception.runtime.weights import resolve

    def wrong_task(meta: dict) -> WeightsError | None:
        task = meta.get("task") or ARCH_TASKS.get(str(meta.get("arch")), "unknown")
        if task == "segment":
            return None
        hint = "; use --task dehaze for it" if task == "dehaze" else ""
        return WeightsError(
            f"weights {name} hold a {task} model ({meta.get('arch')}); segment evaluation needs "
            f"segmentation weights (unet or spiking_unet, e.g. spiking_unet){hint}"
        )

    try:
        model, ckpt = load_unet(name, expect=("unet", "spiking_unet", "lite_unet", "spiking_lite_unet"))
    except WeightsError:
        err = wrong_task(load_checkpoint(resolve(str(name))).metadata)
        if err is not None:
            raise err from None
        raise
    err = wrong_task(ckpt.metadata)
    if err is not None:
        raise err
    return model, ckpt


def evaluate_models(
    weights: list[str],
    data: list[str],
    split: str,
    val_fraction: float,
    seed: int,
    size: tuple[int, int] | None,
    timesteps: list[int] | None,
    batch: int = 4,
    limit: int | None = None,
    progress: bool = True,
    device: str = "cpu",
) -> list[dict]:
    import torch

    from snn_perception.models.unet import class_ids
    from snn_perception.offline.finetune import evaluate_snn_segment
    from snn_perception.offline.seg_data import SegDataset, select_split
    from snn_perception.offline.seg_metrics import ConfusionMatrix
    from snn_perception.runtime.engine import ANN_ARCHS, resolve_device
    from snn_perception.runtime.progress import bar

    if batch < 1:
        raise ValueError(f"--batch {batch}: must be ≥ 1 (images per forward pass)")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit {limit}: must be ≥ 1 (omit it to evaluate every image)")
    models = [load_segmenter(name) for name in weights]  # every model's task is checked before any scoring
    if timesteps and all(ckpt.metadata["arch"] in ANN_ARCHS for _, ckpt in models):
        # beside a spiking model the ANN's row says T "–"; alone, --timesteps would change nothing
        raise ValueError(
            f"--timesteps {','.join(map(str, timesteps))}: {', '.join(map(str, weights))} "
            + (
                "is an ANN U-Net, which runs once and has"
                if len(weights) == 1
                else "are ANN U-Nets, which run once and have"
            )
            + " no timesteps; drop --timesteps, or add spiking weights to compare with"
        )
    dev = resolve_device(device)
    pairs = select_split(data, split, val_fraction, seed)
    if limit:
        pairs = pairs[:limit]
    cache: dict[tuple, SegDataset] = {}
    rows = []
    for name, (model, ckpt) in zip(weights, models, strict=True):
        meta = ckpt.metadata
        hw = tuple(size or meta.get("input_hw") or (256, 256))
        m = int(getattr(model, "size_multiple", 16))
        if hw[0] % m or hw[1] % m:
            raise ValueError(f"--size {hw[0]}x{hw[1]}: {name} needs sides that are multiples of {m}")
        model.to(dev)
        key = (hw, model.config.num_classes)
        if key not in cache:
            cache[key] = SegDataset(pairs, hw, None, model.config.num_classes)
        ds = cache[key]
        names = meta.get("class_names")
        base = {
            "model": str(name),
            "weights": str(ckpt.path),
            "sha256": ckpt.sha256,
            "arch": meta["arch"],
            "images": len(ds),
            "size": list(hw),
            "split": split,
        }
        if meta["arch"] not in ANN_ARCHS:
            ts = timesteps or [int(meta.get("default_timesteps", 4))]
            for t, sc in evaluate_snn_segment(model, ds, ts, batch, names, progress, device=dev).items():
                rows.append({**base, "timesteps": t, **sc})
        else:
            cm = ConfusionMatrix(model.config.num_classes)
            with torch.no_grad():
                for i in bar(range(0, len(ds), batch), desc="ANN", disable=not progress, leave=False):
                    xs, ys = zip(*(ds[j] for j in range(i, min(i + batch, len(ds)))), strict=True)
                    cm.update(class_ids(model(torch.stack(xs).to(dev))).cpu(), torch.stack(ys))
            rows.append({**base, "timesteps": None, **cm.scores(names)})
    return rows


def run_segment(args: argparse.Namespace) -> int:
    from snn_perception.commands.evaluate import fail
    from snn_perception.offline.seg_data import SegDataError
    from snn_perception.runtime.checkpoint import WeightsError
    from snn_perception.runtime.engine import tune_allocator
    from snn_perception.runtime.progress import enabled as progress_enabled
    from snn_perception.runtime.weights import default_weights

    tune_allocator()  # keep big activation buffers in the heap: no page faults per batch
    if args.native:
        return fail("--native is not supported for --task segment; use --size HxW (multiples of 16)")
    if args.size and (args.size[0] % 16 or args.size[1] % 16):
        h, w = args.size
        return fail(f"--size {h}x{w}: segmentation sizes must be multiples of 16, e.g. 256 or 256x320")
    try:
        weights = args.weights if args.weights else [default_weights("segment")]
        rows = evaluate_models(
            weights,
            args.data,
            args.split,
            args.val_fraction,
            args.seed,
            args.size,
            args.timesteps,
            args.batch,
            args.limit,
            progress=progress_enabled(),
            device=args.device,
        )
    except (WeightsError, SegDataError, ValueError) as exc:
        return fail(str(exc))
    print(format_rows(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
        print(f"results: {args.json}")
    return 0
