"""Output-path checks for the CLI verbs and the trainers, run before any work: a refusal loses nothing.

The rule every verb follows: an output never replaces one of the command's inputs; an existing
output file or run folder is replaced only with ``--overwrite`` (report files such as ``--json``
are the exception: they are ours to rewrite, but must be ``.json`` files and never an input).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def refuse_input_clash(outputs: Iterable[Path], inputs: Iterable[Path], what: str) -> None:
    """ValueError if any output path is one of the input files (it would be overwritten)."""
    resolved = {Path(p).resolve() for p in inputs}
    for out in outputs:
        if Path(out).resolve() in resolved:
            raise ValueError(f"{what} {out} is also an input and would be overwritten; choose another path")


def check_json_output(path: Path | None, inputs: Iterable[Path] = (), created: Path | None = None) -> None:
    """``--json`` must name a ``.json`` file (not a folder, not an input) in an existing folder,
    or in ``created``, the output folder the command is about to make."""
    if path is None:
        return
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise ValueError(f"--json {path}: must end in .json (it is overwritten with the statistics)")
    if path.is_dir():
        raise ValueError(f"--json {path}: is a folder; give a file name ending in .json")
    refuse_input_clash([path], inputs, "--json")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir() and not (created is not None and parent.resolve() == Path(created).resolve()):
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


def make_dir(folder: Path, what: str = "--out", given: Path | None = None) -> Path:
    """Create ``folder`` now (with parents), so an impossible output fails before the work.

    ``given``: the path the user gave when ``folder`` is its parent (an output file's folder).
    """
    folder = Path(folder)
    given = folder if given is None else Path(given)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        place = "the folder" if given == folder else f"its folder {folder}"
        where = f"{exc.filename}: " if exc.filename and str(exc.filename) != str(folder) else ""
        raise ValueError(
            f"{what} {given}: cannot create {place} ({where}{exc.strerror or exc}); "
            "choose a folder you can write to"
        ) from None
    return folder


def refuse_existing_outputs(outputs: Iterable[Path], overwrite: bool, what: str = "--out") -> None:
    """Output files that already exist are earlier results: refused unless ``overwrite``.

    A folder where an output file would go is refused even with ``overwrite`` (it cannot be replaced
    by a file). The message names the first two and the count, so one line stays readable.
    """
    outputs = [Path(o) for o in outputs]
    folders = [o for o in outputs if o.is_dir()]
    if folders:
        raise ValueError(f"{what}: {folders[0]} is a folder where an output file would go; move it away")
    existing = [o for o in outputs if o.exists()]
    if existing and not overwrite:
        named = ", ".join(str(o) for o in existing[:2])
        if len(existing) > 2:
            named += f", … ({len(existing) - 2} more)"
        raise ValueError(
            f"{what}: {len(existing)} of the {len(outputs)} output file(s) already exist "
            f"({named}); pass --overwrite to replace them, or choose another folder"
        )


def refuse_input_folder(out: Path, inputs: Iterable[Path], what: str = "--out") -> None:
    """An output folder must not be the folder of an input file (a folder given as input included).

    Results written next to the inputs would be read as inputs by the next run on that folder (or
    by a ``*.png`` glob), and mixing them makes both hard to tell apart. A sub-folder is fine: the
    verbs that read folders do not recurse.
    """
    target = Path(out).resolve()
    for item in inputs:
        folder = Path(item).parent
        if folder.resolve() == target:
            raise ValueError(
                f"{what} {out}: is the folder of the input {item}; results there would be read as inputs "
                f"by a later run; choose another folder, e.g. {Path(out) / 'out'}"
            )
