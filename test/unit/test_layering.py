"""The ROS-free layers really are ROS-free: they import with rclpy made unimportable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_run import cold_cli

REPO = Path(__file__).resolve().parents[2]
ROS_FREE = [
    "snn_perception",
    "snn_perception.models",
    "snn_perception.runtime",
    "snn_perception.offline",
    "snn_perception.replay",
    "snn_perception.weights",
    "snn_perception.cli",
]

BLOCKER = """
import importlib, importlib.abc, pkgutil, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        root = name.split('.')[0]
        if root in ('rclpy', 'rosidl_runtime_py', 'sensor_msgs', 'std_msgs', 'lifecycle_msgs',
                    'diagnostic_msgs', 'builtin_interfaces') or name.startswith('snn_perception.msg') \\
                or name.startswith('snn_perception.srv') or name.startswith('snn_perception.ros'):
            raise ImportError(f'blocked ROS import: {name}')
sys.meta_path.insert(0, Block())
"""


def _modules_under(package: str) -> list[str]:
    base = REPO / Path(*package.split("."))
    if not base.is_dir():
        return []
    return [f"{package}.{p.stem}" if p.stem != "__init__" else package for p in sorted(base.glob("*.py"))]


@pytest.mark.parametrize("package", ROS_FREE)
def test_ros_free_layer_imports_without_rclpy(package: str) -> None:
    modules = [package, *_modules_under(package)] if package != "snn_perception" else [package]
    code = BLOCKER + "".join(f"importlib.import_module({m!r})\n" for m in dict.fromkeys(modules))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{package} pulled in a ROS module:\n{result.stderr[-3000:]}"


def test_cli_help_and_version() -> None:
    for args in (["--help"], ["--version"]):
        result = cold_cli(*args, cwd=REPO)
        assert result.returncode == 0, result.stderr
        assert "snn-perception" in result.stdout
