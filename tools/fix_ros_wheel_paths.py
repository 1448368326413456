"""Rewrite the foreign Python paths baked into the ROS 2 wheels' CMake files.

The PyPI ROS wheels are built in a manylinux container whose Python lives under
``/opt/python/cp311-cp311``; their exported CMake files name its include directory
(and numpy's), which does not exist here, so ``colcon build`` of our messages
fails. Point them at this interpreter's headers instead. Idempotent.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

FOREIGN = re.compile(r"/opt/python/cp3\d+-cp3\d+[^\s;\"')]*")


def replacement(match: re.Match[str]) -> str:
    path = match.group(0)
    if "numpy" in path and path.endswith("include"):
        import numpy

        return numpy.get_include()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if path.rstrip("/").endswith(("include", f"include/{version}")):
        return sysconfig.get_paths()["include"]
    return sys.prefix


def main(venv: str) -> int:
    root = Path(venv).resolve()
    changed = 0
    for path in root.rglob("*.cmake"):
        text = path.read_text(errors="replace")
        if "/opt/python/" not in text:
            continue
        path.write_text(FOREIGN.sub(replacement, text))
        changed += 1
    print(f"rewrote foreign Python paths in {changed} CMake file(s) under {root}")
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").is_file():
        print(f"WARNING: {include}/Python.h is missing; install python3-dev", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".venv"))
