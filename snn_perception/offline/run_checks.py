"""Input checks shared by the trainers (``train dhz``, ``train unet``, ``finetune``, ``convert``).

Everything here runs before any data is read or anything is written, so a refused input costs
nothing and never an earlier run: numbers are checked with the CLI flag in the message, a run
folder holding an earlier run needs ``--resume`` or ``--overwrite``, and a ``--resume`` file must
be a training state of the same trainer for the same network.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from snn_perception.runtime.paths import check_output_dir, make_dir


def require(ok: bool, flag: str, value: Any, accepted: str) -> None:
    """ValueError naming the option, the bad value and what is accepted (messages use the CLI flag)."""
    if not ok:
        raise ValueError(f"{flag} {value}: must be {accepted}")


def finite(value: float, low: float, *, above: bool = False, high: float = math.inf) -> bool:
    """``value`` is a finite number in [low, high] (or (low, high] with ``above``); NaN never is."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(v) and (v > low if above else v >= low) and v <= high


def check_outside(
    out: str | Path, folders: Sequence[str | Path], what: str = "--out", flag: str = "--data"
) -> None:
    """Refuse an output folder that is, or is inside, an input folder: a later run would read it as data."""
    target = Path(out).expanduser().resolve()
    for folder in folders:
        inside = Path(folder).expanduser().resolve()
        if target == inside or inside in target.parents:
            raise ValueError(
                f"{what} {out}: inside the {flag} folder {folder}; write outputs outside the data "
                "(they would be read as data by the next run)"
            )


def check_run_dir(
    out: str | Path, *, resume: str | None, overwrite: bool, data: Sequence[str | Path] = ()
) -> None:
    """Refuse an ``out`` that is (inside) a file or a ``data`` folder, or that holds an earlier run
    we would overwrite.

    An earlier run (``best.safetensors`` or ``last.pt``) may only be continued (``resume``) or
    replaced (``overwrite``); checked before any data is read, so a refusal costs nothing.
    """
    out = Path(out)
    check_output_dir(out, "--out")
    check_outside(out, data)
    if not out.exists():  # create and remove again: an impossible --out fails now, not after loading data
        new = [p for p in (out, *out.parents) if not p.exists()]
        try:
            make_dir(out, "--out")
        finally:
            for p in new:
                try:
                    p.rmdir()
                except OSError:
                    pass
    if resume and overwrite:
        raise ValueError("--resume continues the run in --out, --overwrite starts a new one: pass only one")
    earlier = [n for n in ("best.safetensors", "last.pt") if (out / n).exists()]
    if earlier and not resume and not overwrite:
        raise ValueError(
            f"--out {out} already holds a run ({', '.join(earlier)}); pass --resume {out / 'last.pt'} to "
            "continue it, --overwrite to replace it, or choose another --out"
        )


def prepare_run_dir(out: str | Path, outputs: Sequence[str], *, overwrite: bool, what: str = "--out") -> Path:
    """Create ``out`` (a clear error if it cannot be); with ``overwrite`` remove the earlier run's files.

    Called after every input was checked and loaded, so a bad input never costs the earlier run.
    """
    out = make_dir(Path(out), what)
    if overwrite:
        for name in outputs:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    return out


def _state_kind(state: Mapping) -> str:
    """Which trainer wrote a training state, judged by its keys (for error messages)."""
    model = state.get("model")
    keys = list(model) if isinstance(model, Mapping) else []
    if any(k.startswith("spikecode_") for k in keys):
        return "a 'train dhz' state (snnTrans-DHZ)"
    if any(".bn1." in k for k in keys):
        return "a 'train unet' state (ANN U-Net)"
    if keys and "best" not in state:
        return "a 'finetune' state (Spiking-UNet)"
    if keys:
        return "a U-Net training state"
    return f"a dict with keys {sorted(map(str, state))[:6]}"


def load_resume(
    path: str | Path, model: torch.nn.Module, *, kind: str, required: Sequence[str], hint: str = "OUT/last.pt"
) -> dict:
    """A training state written by ``kind`` for this very network, or a WeightsError saying what it is.

    Loaded with ``weights_only=True`` (no pickle runs code); checked against ``model``'s parameter names
    and shapes so a wrong file fails here, in one line, and not as a state-dict dump mid-way.
    """
    from snn_perception.runtime.checkpoint import WeightsError, torch_load_safely

    path = Path(path)
    expected = f"expected the {hint} that '{kind}' writes"
    if not path.is_file():
        raise WeightsError(f"--resume {path}: no such file; {expected}")
    with open(path, "rb") as f:
        head = f.read(9)
    if path.suffix == ".safetensors" or (len(head) == 9 and head[8:9] == b"{"):
        raise WeightsError(f"--resume {path}: a weights checkpoint, not a training state; {expected}")
    try:
        state = torch_load_safely(path)
    except WeightsError as exc:  # a code-running pickle, a broken zip, random bytes: not a last.pt
        why = str(exc).removeprefix(f"{path}: ")
        raise WeightsError(f"--resume {path}: not a training state: {why}; {expected}") from None
    if not isinstance(state, dict):
        found = type(state).__name__
        raise WeightsError(f"--resume {path}: holds a {found}, not a training state; {expected}")
    if not isinstance(state.get("model"), Mapping):
        raise WeightsError(f"--resume {path}: {_state_kind(state)} without 'model'; {expected}")
    ours, theirs = model.state_dict(), state["model"]
    found = _state_kind(state)
    if set(ours) != set(theirs):
        if found.startswith(f"a '{kind}'"):
            raise WeightsError(
                f"--resume {path}: {found} of a different network (other layers); "
                "resume with the settings of the original run"
            )
        raise WeightsError(f"--resume {path}: holds {found}; {expected}")
    missing = [k for k in required if k not in state]
    if missing:
        raise WeightsError(f"--resume {path}: {found} without {missing}; {expected}")
    for key, value in ours.items():
        other = theirs[key]
        if not isinstance(other, torch.Tensor) or other.shape != value.shape:
            shape = tuple(other.shape) if isinstance(other, torch.Tensor) else type(other).__name__
            raise WeightsError(
                f"--resume {path}: a '{kind}' state of a different network ({key} {shape}, here "
                f"{tuple(value.shape)}); resume with the settings of the original run"
            )
    return state
