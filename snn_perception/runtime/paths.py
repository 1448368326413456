"""Output-path checks for the CLI verbs and the trainers, run before any work: a refusal loses nothing.

The rule every verb follows: an output never replaces one of the command's inputs; an existing
output file or run folder is replaced only with ``--overwrite`` (report files such as ``--json``
are the exception: they are ours to rewrite, but must be ``.json`` files and never an input).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def refuse_input_clash(outputs: Iterable[Path], inputs: Iterable[Path], what: str) -> None:
    """ValueError if any output path is one of the input files (it would be overwritten)."""
    resolved = {Path(p).resolve() for p in inputs}
    for out in outputs:
        if Path(out).resolve() in resolved:
            raise ValueError(f"{what} {out} is also an input and would be overwritten; choose another path")


def check_json_output(path: Path | None, inputs: Iterable[Path] = ()) -> None:
    """``--json`` must name a ``.json`` file (not a folder, not an input) in an existing folder."""
    if path is None:
        return
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise ValueError(f"--json {path}: must end in .json (it is overwritten with the statistics)")
    if path.is_dir():
        raise ValueError(f"--json {path}: is a folder; give a file name ending in .json")
    refuse_input_clash([path], inputs, "--json")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"--json {path}: folder {parent} does not exist")


def check_output_file(
    path: Path, *, inputs: Iterable[Path] = (), overwrite: bool = False, what: str = "--out"
) -> None:
    """A new output file: not an input, not a folder, not an existing file unless ``overwrite``."""
    path = Path(path)
    refuse_input_clash([path], inputs, what)
    if path.is_dir():
        raise ValueError(f"{what} {path}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise ValueError(
            f"{what} {path} already exists; pass --overwrite to replace it, or choose another path"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"{what} {path}: {parent} is a file, not a folder")


def check_output_dir(path: Path, what: str = "--out") -> None:
    """An output folder: may exist (as a folder) or be creatable; never an existing file."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise ValueError(f"{what} {path}: {p} is a file, not a folder")
            break
