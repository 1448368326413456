"""Weight averages ("model soups") of checkpoints of one network: uniform, or weighted.

Fine-tuning runs that start from the same weights usually stay in one basin of the loss, and
the average of their weights often validates better than any one of them (Wortsman et al.,
ICML 2022). Score the average on your validation split before using it: runs from different
starting points can average into a worse model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from snn_perception.runtime.checkpoint import Checkpoint, WeightsError, load_checkpoint

#: metadata that describes one run and no longer holds for the average (``training`` is kept
#: from the first checkpoint: its data split is what the average must be validated on)
_PER_RUN_KEYS = ("metrics", "command")
#: training settings that decide which images were held out for validation
_SPLIT_KEYS = ("data", "val_fraction", "seed", "val_images")


def average_checkpoints(paths: Sequence[str | Path]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """:func:`average` of the checkpoints at ``paths``."""
    if len(paths) < 2:
        raise WeightsError(f"averaging needs at least two checkpoints, got {len(paths)}")
    return average([load_checkpoint(p) for p in paths])


def average(
    ckpts: Sequence[Checkpoint], coefficients: Sequence[float] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The mean of the checkpoints' floating-point tensors (computed in float64) and metadata;
    with ``coefficients`` (one per checkpoint, ≥ 0, summing to 1) the weighted mean, e.g. weights
    part-way between two runs.

    Integer tensors (BatchNorm batch counters) are taken from the first checkpoint. Every
    checkpoint must hold the same architecture, variant and tensor names and shapes; otherwise a
    :class:`WeightsError` names the first file that differs and how. ``meta["average"]["notes"]``
    warns when the runs used different data or validation splits (then the first run's
    validation images may have been trained on by another).
    """
    if len(ckpts) < 2:
        raise WeightsError(f"averaging needs at least two checkpoints, got {len(ckpts)}")
    if coefficients is not None:
        coefficients = [float(c) for c in coefficients]
        if len(coefficients) != len(ckpts) or min(coefficients) < 0 or abs(sum(coefficients) - 1) > 1e-9:
            raise WeightsError(
                f"averaging coefficients {coefficients}: expected {len(ckpts)} numbers ≥ 0 that sum to 1"
            )
    check_candidates(ckpts)
    first = ckpts[0]
    state = {}
    for key, value in first.state_dict.items():
        if not value.is_floating_point():
            state[key] = value.clone()
        elif coefficients is None:
            total = sum(ck.state_dict[key].to(torch.float64) for ck in ckpts)
            state[key] = (total / len(ckpts)).to(value.dtype)
        else:
            total = sum(
                c * ck.state_dict[key].to(torch.float64) for c, ck in zip(coefficients, ckpts, strict=True)
            )
            state[key] = total.to(value.dtype)
    meta = {k: v for k, v in first.metadata.items() if k not in _PER_RUN_KEYS and k != "format_version"}
    notes = [
        f"{ck.path}: trained on other data or another validation split than {first.path}"
        for ck in ckpts[1:]
        if _split(ck) != _split(first)
    ]
    meta["average"] = {
        "method": "uniform" if coefficients is None else "weighted",
        **({} if coefficients is None else {"coefficients": coefficients}),
        "notes": notes,
        "of": [
            {"path": str(ck.path), "sha256": ck.sha256, "command": ck.metadata.get("command")} for ck in ckpts
        ],
    }
    return state, meta


#: ``score(state_dict, metadata)`` → a loss (lower is better), e.g. the validation loss
Score = Callable[[dict[str, torch.Tensor], dict[str, Any]], float]


def greedy_soup(
    paths: Sequence[str | Path], score: Score, log: Callable[[dict], None] = lambda _: None
) -> tuple[list[str | Path], float]:
    """Greedy soup (Wortsman et al., 2022): the members to average, and their soup's score.

    Candidates are sorted by their own score; starting from the best, each next one stays only
    if the uniform average with it scores strictly better. ``log`` receives every score. Each
    file is read once.
    """
    ckpts = [load_checkpoint(path) for path in paths]
    check_candidates(ckpts)  # before any scoring: a wrong file fails in seconds, not after minutes
    alone = []
    for i, ckpt in enumerate(ckpts):
        alone.append((score(ckpt.state_dict, ckpt.metadata), str(paths[i]), i))
        log({"candidate": str(paths[i]), "score": alone[-1][0]})
    alone.sort()
    soup, best = [alone[0][2]], alone[0][0]
    for _, _, i in alone[1:]:
        value = score(*average([ckpts[j] for j in [*soup, i]]))
        kept = value < best
        log({"try": [str(paths[j]) for j in [*soup, i]], "score": value, "kept": kept})
        if kept:
            soup, best = [*soup, i], value
    return [paths[j] for j in soup], best


def check_candidates(ckpts: Sequence[Checkpoint]) -> None:
    """One network throughout, and no weights twice (that would silently weigh them double)."""
    seen: dict[str, Checkpoint] = {}
    for ck in ckpts:
        if ck.sha256 in seen:
            raise WeightsError(
                f"{ck.path}: the same weights as {seen[ck.sha256].path} (sha256 {ck.sha256[:12]}); "
                "give each checkpoint once"
            )
        seen[ck.sha256] = ck
        _check_same_network(ckpts[0], ck)


def _split(ck: Checkpoint) -> dict[str, Any]:
    training = ck.metadata.get("training") or {}
    return {k: training.get(k) for k in _SPLIT_KEYS}


def _check_same_network(first: Checkpoint, other: Checkpoint) -> None:
    for key in ("arch", "variant"):
        a, b = first.metadata.get(key), other.metadata.get(key)
        if a != b:
            raise WeightsError(f"{other.path}: {key} {b!r} differs from {first.path}'s {a!r}; cannot average")
    names_a, names_b = set(first.state_dict), set(other.state_dict)
    if names_a != names_b:
        diff = sorted(names_a ^ names_b)[:3]
        raise WeightsError(f"{other.path}: other tensors than {first.path} (e.g. {diff}); cannot average")
    for key, value in first.state_dict.items():
        theirs = other.state_dict[key]
        if theirs.shape != value.shape:
            raise WeightsError(
                f"{other.path}: {key} has shape {tuple(theirs.shape)}, {first.path} {tuple(value.shape)}; "
                "cannot average"
            )
