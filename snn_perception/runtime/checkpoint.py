"""Safe checkpoint files: our ``.safetensors`` with metadata, and plain official state dicts.

Our format is one ``.safetensors`` file whose string metadata holds a JSON object under the key
``snn_perception`` (architecture, variant, default timesteps, task, classes, training data,
metrics, the command that made it…), so a checkpoint knows what it is and how good it is.
Plain ``.pth``/``.pt`` state dicts are read with ``torch.load(weights_only=True)``, which refuses
any pickle that would run code; the official snnTrans-DHZ checkpoint is recognised by its keys.

Every failure (missing, truncated, corrupt, unrecognised or wrong-architecture file) raises one
exception type, :class:`WeightsError`, naming the file and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from snn_perception.runtime.weights import (
    WeightsError,  # defined torch-free there; raised and re-exported here
)

METADATA_KEY = "snn_perception"
FORMAT_VERSION = 1

#: Keys that identify the official snnTrans-DHZ state dict (vidya-rejul/snnTrans-DHZ).
_OFFICIAL_DHZ_KEYS = (
    "spikecode_rgb.conv1.weight",
    "spikecode_lab.conv1.weight",
    "H_est.up3_Hx.weight",
    "BL_est_conv.convf.weight",
)
OFFICIAL_DHZ_METADATA: dict[str, Any] = {
    "arch": "snntrans_dhz",
    "variant": "official",
    "task": "dehaze",
    "default_timesteps": 4,
    "input_hw": [512, 512],
    "source": "official snnTrans-DHZ checkpoint (vidya-rejul/snnTrans-DHZ), trained with T=4 at 512x512",
}


@dataclass
class Checkpoint:
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    path: Path | None = None

    @property
    def weights_id(self) -> str:
        return self.sha256[:12]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(
    path: str | Path, state_dict: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]
) -> str:
    """Write ``state_dict`` + ``metadata`` (JSON-serialisable, must name ``arch``) as safetensors.

    Returns the file's sha256.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if "arch" not in metadata:
        raise ValueError(f"checkpoint metadata for {path} must name 'arch'")
    meta = {"format_version": FORMAT_VERSION, **metadata}
    try:
        text = json.dumps(meta, sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"checkpoint metadata for {path} is not JSON-serialisable: {exc}") from exc
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={METADATA_KEY: text})
    # safetensors creates files 0600; weights are shared (a node may run as another user), so
    # give them the mode any new file gets here (0644 under the usual umask 022)
    tmp.chmod(0o666 & ~_umask())
    tmp.replace(path)
    return sha256_file(path)


def _umask() -> int:
    try:  # Linux ≥ 4.7 reports it without changing it (os.umask would, briefly, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _looks_like_safetensors(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1


def _load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw_meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for every corruption
        raise WeightsError(
            f"{path}: not a readable safetensors file ({exc}); the file may be truncated"
        ) from exc
    if METADATA_KEY not in raw_meta:
        raise WeightsError(
            f"{path}: safetensors file without '{METADATA_KEY}' metadata; expected a checkpoint written by "
            "snn_perception.runtime.checkpoint.save_checkpoint"
        )
    try:
        meta = json.loads(raw_meta[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path}: '{METADATA_KEY}' metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or "arch" not in meta:
        raise WeightsError(f"{path}: '{METADATA_KEY}' metadata must be a JSON object naming 'arch'")
    return tensors, meta


def torch_load_safely(path: Path) -> Any:
    """``torch.load(weights_only=True)`` on the CPU; a refusal is a :class:`WeightsError` whose
    message is ``"<path>: <why, in one short clause>"`` (torch's own text is long, multi-line and
    coloured)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's advice on trusting the file: we never will
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: {_torch_refusal(exc)}") from None


def _torch_refusal(exc: Exception) -> str:
    import pickle

    if isinstance(exc, pickle.UnpicklingError):
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # the object torch refused, when it says
        if found:
            return f"refused: it holds Python objects ({found.group(1)}, …), and such a pickle could run code"
        return "not a weights-only torch file (it holds more than tensors and plain values, or is none)"
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return f"not a readable torch file ({type(exc).__name__}: {lines[0][:160] if lines else ''})"


def _load_torch(path: Path) -> Any:
    try:
        return torch_load_safely(path)
    except WeightsError as exc:
        raise WeightsError(
            f"{exc}; expected a .safetensors checkpoint or a plain state dict of tensors "
            "(pickles that execute code are never loaded)"
        ) from None


def _as_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(
            f"{path}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}"
        )
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{path}: expected a state dict of tensors; entries {bad[:3]} are not tensors")
    return dict(obj)


def recognise(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any] | None:
    """Metadata for known foreign state dicts (the official DHZ checkpoint), else None."""
    if all(k in state_dict for k in _OFFICIAL_DHZ_KEYS):
        return dict(OFFICIAL_DHZ_METADATA)
    return None


def load_checkpoint(path: str | Path, expect_arch: str | None = None) -> Checkpoint:
    """Read a checkpoint safely; ``expect_arch`` turns a mismatch into a :class:`WeightsError`."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found (expected a .safetensors or .pth file)")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: weights file is empty")
    if path.suffix == ".safetensors" or _looks_like_safetensors(path):
        tensors, meta = _load_safetensors(path)
    else:
        tensors = _as_state_dict(_load_torch(path), path)
        meta = recognise(tensors)
        if meta is None:
            raise WeightsError(
                f"{path}: unrecognised state dict (first keys {list(tensors)[:3]}); expected a .safetensors "
                "checkpoint with snn_perception metadata or the official snnTrans-DHZ state dict"
            )
    if expect_arch is not None and meta.get("arch") != expect_arch:
        raise WeightsError(f"{path}: holds architecture {meta.get('arch')!r}, expected {expect_arch!r}")
    return Checkpoint(state_dict=tensors, metadata=meta, sha256=sha256_file(path), path=path)


def load_into(model: torch.nn.Module, ckpt: Checkpoint) -> int:
    """``load_state_dict(strict=True)`` with a :class:`WeightsError` that names the file, then
    :func:`flush_subnormals_`; returns how many subnormal values were set to zero."""
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = " ".join(lines[1:3])[:400] if len(lines) > 1 else lines[0][:400]
        raise WeightsError(
            f"{ckpt.path}: weights do not fit architecture {ckpt.metadata.get('arch')!r} "
            f"(variant {ckpt.metadata.get('variant')!r}): {detail}"
        ) from exc
    return flush_subnormals_(model)


def count_subnormals(model: torch.nn.Module, tensors_only: bool = False) -> int:
    """Non-zero floating-point parameters and buffers (scalars too, unless ``tensors_only``)
    smaller in magnitude than the dtype's smallest normal number."""
    total = 0
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point() and (t.dim() > 0 or not tensors_only):
            tiny = torch.finfo(t.dtype).tiny
            total += int(((t != 0) & (t.abs() < tiny)).sum())
    return total


@torch.no_grad()
def flush_subnormals_(model: torch.nn.Module) -> int:
    """Set subnormal ("denormal") weights and buffers to zero, in place; returns how many.

    Why: the published snnTrans-DHZ checkpoint holds 114,690 float32 values below 1.18e-38 (whole
    layers that weight decay drove towards zero). Arithmetic on subnormals runs in microcode on
    many x86 CPUs, and oneDNN's worker threads do not inherit ``torch.set_flush_denormal``: on
    such a CPU that checkpoint took 554 ms per 256² frame against 71 ms for the same network
    without them. Their contribution is below the rounding of every sum they enter, so outputs
    stay bit-identical (the exactness tests compare against the official outputs exactly).

    Scalars are left as they are: the thresholds among them (five of the official checkpoint's are
    about ±4.9e-41) are compared with membranes, where 0 and 4.9e-41 differ for a membrane of 0,
    and a scalar costs one operation per tensor, not one per element.
    """
    flushed = 0
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point() and t.dim() > 0:
            sub = (t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)
            n = int(sub.sum())
            if n:
                t.masked_fill_(sub, 0.0)
                flushed += n
    return flushed


# -- training state (optimizer etc., for resume): plain tensors and primitives only


def save_training_state(path: str | Path, state: Mapping[str, Any]) -> None:
    """``torch.save`` of tensors, numbers, strings, lists and dicts (loadable with weights_only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(state), tmp)
    tmp.replace(path)


def load_training_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: training state not found")
    obj = _load_torch(path)
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a dict of training state, got {type(obj).__name__}")
    return obj
