"""The layering of docs/architecture.md, held statically: every import of every module (function-local
ones and ``importlib.import_module("literal")`` included) must run one way.

models  → torch and itself only
runtime → models (never ros, offline, replay, commands)
offline → models, runtime (never ros, replay, commands)
ros     → models, runtime (never offline, replay, commands)
replay  → models, runtime, offline, ros; ROS itself (rclpy, message packages) only through ros/
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "snn_perception"

#: layer → the snn_perception layers it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "models": ("runtime", "ros", "offline", "replay", "commands", "cli", "msg", "srv"),
    "runtime": ("ros", "offline", "replay", "commands", "cli", "msg", "srv"),
    "offline": ("ros", "replay", "commands", "cli", "msg", "srv"),
    "ros": ("offline", "replay", "commands", "cli"),
    "replay": ("commands", "cli", "msg", "srv"),
}
#: third-party roots that only ros/ may import (ROS client library and message packages)
ROS_ROOTS = (
    "rclpy",
    "rosidl_runtime_py",
    "sensor_msgs",
    "std_msgs",
    "lifecycle_msgs",
    "diagnostic_msgs",
    "builtin_interfaces",
    "rcl_interfaces",
    "rosgraph_msgs",
    "launch",
    "launch_ros",
)
#: layers that must not import ROS directly
ROS_FREE = ("models", "runtime", "offline", "replay")


def imported_names(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``tree``, at any depth, including
    ``importlib.import_module("name")`` with a literal name. ``module``: the importing module's
    dotted name, to resolve relative imports."""
    found: list[tuple[int, str]] = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
                found.append((node.lineno, str(node.args[0].value)))
    return found


def violations(source: str, module: str) -> list[str]:
    """What ``module`` (e.g. ``snn_perception.models.dhz``) imports against the rules."""
    parts = module.split(".")
    layer = parts[1] if len(parts) > 2 else ""
    bad = []
    for line, name in imported_names(ast.parse(source), module):
        target = name.split(".")
        if target[0] == "snn_perception" and len(target) > 1 and target[1] in FORBIDDEN.get(layer, ()):
            bad.append(f"{module}:{line} imports {name} ({layer} must not import {target[1]})")
        if layer in ROS_FREE and target[0] in ROS_ROOTS:
            bad.append(f"{module}:{line} imports {name} (ROS is reached only through snn_perception.ros)")
        if layer == "models" and target[0] == "snn_perception" and len(target) > 1 and target[1] != "models":
            bad.append(f"{module}:{line} imports {name} (models import only torch and models)")
    return bad


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def test_every_module_keeps_the_layering() -> None:
    bad = [v for module, path in _modules() for v in violations(path.read_text(), module)]
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "snn_perception.models.fake",
            "from snn_perception.runtime.engine import Engine\n",
            "must not import runtime",
        ),
        (
            "snn_perception.models.fake",
            "def f():\n    import snn_perception.ros.executor\n",
            "must not import ros",
        ),
        (
            "snn_perception.runtime.fake",
            "import importlib\nimportlib.import_module('snn_perception.offline.x')\n",
            "must not import offline",
        ),
        ("snn_perception.offline.fake", "from ..replay import report\n", "must not import replay"),
        (
            "snn_perception.ros.fake",
            "from snn_perception.commands import bench\n",
            "must not import commands",
        ),
        ("snn_perception.replay.fake", "def f():\n    from sensor_msgs.msg import Image\n", "only through"),
        ("snn_perception.replay.fake", "import rclpy\n", "only through"),
    ],
)
def test_a_forbidden_import_is_caught(module: str, source: str, expected: str) -> None:
    """Synthetic modules: each breaks one rule, and the checker names it."""
    bad = violations(source, module)
    assert bad and expected in bad[0], bad


def test_allowed_imports_pass() -> None:
    ok = "from snn_perception.ros.player import play\nfrom snn_perception.runtime import engine\n"
    assert violations(ok, "snn_perception.replay.fake") == []
    assert violations("import torch\nfrom . import neurons\n", "snn_perception.models.fake") == []
