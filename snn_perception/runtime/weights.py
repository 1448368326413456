"""Weights by name: shipped files in ``snn_perception/weights/`` and known external checkpoints.

A name resolves to a file; anything else is taken as a path. External checkpoints that must not
be redistributed (the official snnTrans-DHZ weights) are looked up in ``$SNN_WEIGHTS_DIR``, then
``$SNN_SHARED_DIR/weights``, then ``../shared/weights`` beside the repository, only if present.
"""

from __future__ import annotations

import os
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "weights"
_REPO = Path(__file__).resolve().parents[2]

#: name → file name, for weights that are never shipped inside the package.
EXTERNAL: dict[str, str] = {"dhz_official": "snntrans_dhz_official_T4.pth"}

#: task → names in order of preference; the first one available is the default.
DEFAULTS: dict[str, tuple[str, ...]] = {
    "dehaze": ("dhz", "dhz_official"),
    "segment": ("spiking_unet", "unet_suim_snn"),
}


class WeightsError(ValueError):
    """A weights file could not be used; the message says which file and what was expected.

    Defined here, not beside the loader in :mod:`~snn_perception.runtime.checkpoint` (which
    re-exports it), so that naming weights in ``--help`` and refusing bad arguments never import torch.
    """


def shared_dirs() -> list[Path]:
    """Where the project's shared material may be: ``$SNN_SHARED_DIR``, then ``../shared`` beside
    the repository (absent from a user's clone: callers fall back or say so)."""
    dirs = [Path(os.environ["SNN_SHARED_DIR"])] if os.environ.get("SNN_SHARED_DIR") else []
    return [*dirs, _REPO.parent / "shared"]


def external_dirs() -> list[Path]:
    dirs = [Path(os.environ["SNN_WEIGHTS_DIR"])] if os.environ.get("SNN_WEIGHTS_DIR") else []
    return [*dirs, *(d / "weights" for d in shared_dirs())]


def available() -> dict[str, Path]:
    """Every weights name that resolves to an existing file now."""
    found: dict[str, Path] = {}
    if SHIPPED_DIR.is_dir():
        for p in sorted(SHIPPED_DIR.glob("*.safetensors")):
            found[p.stem] = p
    for name, filename in EXTERNAL.items():
        for d in external_dirs():
            if (d / filename).is_file():
                found.setdefault(name, d / filename)
                break
    return found


def shipped_for(task: str) -> list[str]:
    """Names of the weights shipped in the package for ``task``, from each file's metadata (its
    header only: cheap enough for ``--help``)."""
    import json

    from safetensors import safe_open

    names = []
    for path in sorted(SHIPPED_DIR.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = json.loads((f.metadata() or {}).get("snn_perception", "{}"))
        except Exception:  # a damaged file is reported when it is loaded, not in a help text
            continue
        if isinstance(meta, dict) and meta.get("task") == task:
            names.append(path.stem)
    return names


def resolve(weights: str | Path) -> Path:
    """A shipped or external name, or a path, → an existing file path (else :class:`WeightsError`)."""
    known = available()
    if isinstance(weights, str) and weights in known:
        return known[weights]
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    if isinstance(weights, str) and weights in EXTERNAL:
        raise WeightsError(
            f"weights {weights!r} ({EXTERNAL[weights]}) not found in {', '.join(map(str, external_dirs()))}; "
            "set SNN_WEIGHTS_DIR to the folder that holds it"
        )
    if path.is_dir():
        raise WeightsError(
            f"weights {str(weights)!r} is a folder; "
            "give a weights file (.safetensors or .pth) or a shipped name"
        )
    names = ", ".join(sorted(known)) or "none"
    raise WeightsError(f"weights {str(weights)!r}: no such file or shipped name; available names: {names}")


def name_for(path: str | Path) -> str:
    """The shipped or external name whose file ``path`` is, else the path itself (for an operator's
    display: ``dhz_v3`` says more than a hash)."""
    resolved = Path(path).resolve()
    return next((name for name, p in available().items() if p.resolve() == resolved), str(path))


def default_weights(task: str) -> str:
    """The preferred available weights name for ``task`` ('dehaze' or 'segment')."""
    if task not in DEFAULTS:
        raise WeightsError(f"unknown task {task!r}; known: {', '.join(DEFAULTS)}")
    known = available()
    for name in DEFAULTS[task]:
        if name in known:
            return name
    raise WeightsError(
        f"no {task} weights available (looked for {', '.join(DEFAULTS[task])}); available: "
        f"{', '.join(sorted(known)) or 'none'}. Pass a path, or set SNN_WEIGHTS_DIR."
    )
