"""``rosdep install --from-paths src`` works for Kilted and Jazzy on Ubuntu noble, and what rosdep
cannot install is in requirements-ros.txt, which the README's ROS-install section names.

The key check reads rosdistro's files from ``../shared/rosdep`` (skipped without them); the checker
itself is proven to fail on an unknown key with a synthetic package.xml.
"""

from __future__ import annotations

import configparser
import functools
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "rosdep_keys.py"

#: pip distribution (setup.cfg install_requires) → the rosdep key that installs it on a ROS install
PIP_TO_ROSDEP = {
    "torch": "python3-torch",
    "numpy": "python3-numpy",
    "opencv-python-headless": "python3-opencv",
    "kornia": "python3-kornia-pip",
    "pyyaml": "python3-yaml",
    "psutil": "python3-psutil",
    "tqdm": "python3-tqdm",
    "numba": "python3-numba",
}


@functools.cache
def _tool():
    spec = importlib.util.spec_from_file_location("rosdep_keys", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rosdep_dir() -> Path:
    path = Path(os.environ.get("SNN_SHARED_DIR", REPO.parent / "shared")).resolve() / "rosdep"
    if not (path / "base.yaml").is_file():
        pytest.skip(f"{path} is absent: the rosdep keys and ROS package indexes come from ../shared")
    return path


@pytest.mark.parametrize("distro", ["kilted", "jazzy"])
def test_every_package_xml_key_resolves_on_noble(rosdep_dir, distro):
    assert _tool().unresolved(REPO / "package.xml", rosdep_dir, distro) == []


def test_an_unknown_key_fails_the_check(rosdep_dir, tmp_path):
    xml = tmp_path / "package.xml"
    xml.write_text(
        '<?xml version="1.0"?>\n<package format="3">\n  <name>synthetic</name>\n'
        "  <exec_depend>rclpy</exec_depend>\n  <exec_depend>python3-numpy</exec_depend>\n"
        "  <exec_depend>python3-kornia-pip</exec_depend>\n  <exec_depend>python3-safetensors</exec_depend>\n"
        "  <test_depend>no_such_ros_package_xyz</test_depend>\n</package>\n"
    )
    bad = _tool().unresolved(xml, rosdep_dir, "kilted")
    assert len(bad) == 2, bad
    assert "exec_depend 'python3-safetensors'" in bad[0] and "requirements-ros.txt" in bad[0]
    assert "test_depend 'no_such_ros_package_xyz'" in bad[1]
    res = subprocess.run(
        [sys.executable, str(TOOL), str(xml), "--rosdep", str(rosdep_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1 and "jazzy: exec_depend 'python3-safetensors'" in res.stdout, res.stdout
    res = subprocess.run(
        [sys.executable, str(TOOL), str(REPO / "package.xml"), "--rosdep", str(rosdep_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_missing_rosdep_folder_is_refused_in_one_line(tmp_path):
    res = subprocess.run(
        [sys.executable, str(TOOL), str(REPO / "package.xml"), "--rosdep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and res.stderr.startswith("rosdep_keys: not found:"), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "rules,ok",
    [
        ({"ubuntu": ["python3-x"]}, True),
        ({"ubuntu": {"pip": {"packages": ["x"]}}}, True),
        ({"*": {"pip": {"packages": ["x"]}}}, True),  # python3-kornia-pip's form: any OS
        ({"ubuntu": {"*": ["python3-x"], "focal": None}}, True),
        ({"ubuntu": {"noble": None, "*": ["python3-x"]}}, False),  # null: not available on noble
        ({"ubuntu": {"jammy": ["python3-x"]}}, False),
        ({"debian": ["python3-x"]}, False),
    ],
)
def test_rules_resolve_per_os_and_release(rules, ok):
    assert _tool()._has_rule(rules, "ubuntu", "noble") is ok


def _requirement_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower())
    return names


def test_every_runtime_dependency_has_a_rosdep_key_or_a_line_in_requirements_ros():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    needed = _requirement_names(cfg["options"]["install_requires"].splitlines())
    keys = {key for _, key in _tool().package_keys(REPO / "package.xml")}
    pip_only = _requirement_names((REPO / "requirements-ros.txt").read_text().splitlines())
    for name in sorted(needed):
        if PIP_TO_ROSDEP.get(name) not in keys:
            assert name in pip_only, f"{name}: no rosdep key in package.xml and not in requirements-ros.txt"
    assert "safetensors" in pip_only and "python3-safetensors" not in keys


def test_the_readme_ros_install_section_names_the_requirements_and_pep_668_advice():
    text = (REPO / "README.md").read_text()
    start = text.index("## On a ROS 2 install")
    section = text[start : text.index("\n## ", start + 3)]
    for words in (
        "rosdep install --from-paths src",
        "requirements-ros.txt",
        "--system-site-packages",
        "PIP_BREAK_SYSTEM_PACKAGES",
        "colcon build",
        "source install/setup.bash",
        "ros2 launch",
    ):
        assert words in section, words


def test_every_private_name_remap_in_the_docs_is_quoted():
    """An unquoted ``-r ~/image:=...`` is expanded by the shell to ``-r /root/image:=...``: ignored."""
    docs = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *(REPO / "launch").glob("*.py")]
    bad = [
        f"{path.relative_to(REPO)}: {line.strip()}"
        for path in docs
        for line in path.read_text().splitlines()
        if re.search(r"(?:^|\s)(?:-r|--remap)\s+~/", line)
    ]
    assert not bad, "quote these remaps ('~/image:=...'):\n" + "\n".join(bad)
