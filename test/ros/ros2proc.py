"""The real ROS 2 command-line tools for tests: ``ros2 launch``, ``ros2 lifecycle``, ``ros2 param``, ...

The pip ROS wheels lack ``launch``, ``launch_ros`` and ``ros2cli``; ``../shared/ros2-tools/install.sh``
installs them (from their public sources) into this venv and builds ``composition_interfaces`` under
``build/ros2-tools``. Every command here runs in its own process on the test module's domain, with
bounded timeouts. As on a user's machine, node look-ups go through the ``ros2`` daemon, one per test
module (:func:`daemon`), stopped when the module ends: without it each CLI process waits for DDS
discovery itself, which on a busy 2-core machine often takes seconds (measured: ``ros2 node list
--no-daemon --spin-time 2`` missed a running node in 4 of 5 runs).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nodeproc import REPO, shared_dir

BUILD = REPO / "build" / "ros2-tools"
ROS2 = Path(sys.prefix) / "bin" / "ros2"


def install_script() -> Path:
    return shared_dir() / "ros2-tools" / "install.sh"


def install_tools(timeout: float = 900.0) -> None:
    """Run install.sh (idempotent); raises RuntimeError with its output.

    Its "already installed" check imports launch_ros, which needs composition_interfaces from the
    overlay it built: run it with that overlay sourced, else it reinstalls everything (~30 s) each time.
    """
    BUILD.parent.mkdir(parents=True, exist_ok=True)
    with open(BUILD.parent / "ros2-tools.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers: one installs, the others then find it done
        _run_install(timeout)


def _run_install(timeout: float) -> None:
    env = dict(os.environ)
    if (BUILD / "install" / "setup.bash").is_file():
        env = sourced(env, BUILD / "install" / "setup.bash")
    result = subprocess.run(
        ["bash", str(install_script()), sys.prefix, str(BUILD)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        output = result.stdout + result.stderr
        raise RuntimeError(f"{install_script()} failed ({result.returncode}):\n{output}")


def sourced(env: dict[str, str], *setup_scripts: Path) -> dict[str, str]:
    """``env`` after ``source``-ing each script in bash, as a user's shell would have it."""
    script = " && ".join(f"source {str(s)!r}" for s in setup_scripts)
    out = subprocess.run(
        ["bash", "-c", f"set -e; {script} >/dev/null; env -0"],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    pairs = (item.split(b"=", 1) for item in out.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs if not k.startswith(b"BASH_FUNC_")}


def tools_env(ros_environment: dict[str, str]) -> dict[str, str]:
    """The module's ROS environment with the tools' overlay sourced and the venv's bin/ first on PATH."""
    env = sourced(ros_environment, BUILD / "install" / "setup.bash")
    env["PATH"] = os.pathsep.join([str(ROS2.parent), env.get("PATH", "")])
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def ros2(env: dict[str, str], *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess:
    """``ros2 ARGS...``; stdout and stderr together in ``.stdout``."""
    try:
        return subprocess.run(
            [str(ROS2), *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        command = " ".join(args)
        raise TimeoutError(f"`ros2 {command}` did not finish in {timeout:.0f} s: {exc.output}") from exc


class Launch:
    """``ros2 launch snn_perception perception.launch.py ARGS`` in its own process group (as in a
    terminal, where Ctrl-C reaches launch and every node it started), its output in a file."""

    def __init__(self, env: dict[str, str], args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [str(ROS2), "launch", "snn_perception", "perception.launch.py", *args],
            env=env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        try:
            return self.log_path.read_text()
        except OSError:
            return ""

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            tail = self.log()[-4000:]
            raise TimeoutError(f"ros2 launch still running after {timeout:.0f} s\n{tail}") from exc

    def ctrl_c(self, timeout: float = 60.0) -> int:
        """SIGINT to the whole process group, as Ctrl-C in a terminal; launch's exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        return self.wait(timeout)

    def kill(self) -> None:
        """Last resort after a failed test: SIGKILL the process group (nodes included, also ones
        that outlived launch)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self._log.close()

    def exits(self) -> dict[str, str]:
        """Each started process (``dehaze_node-1``, ...) → how launch saw it end: ``clean`` or the
        ``exit code N`` it died with."""
        out = {}
        for m in re.finditer(r"\[(\w+-\d+)\]: process has finished cleanly", self.log()):
            out[m.group(1)] = "clean"
        for m in re.finditer(r"\[(\w+-\d+)\]: process has died \[pid \d+, (exit code -?\d+)", self.log()):
            out[m.group(1)] = m.group(2)
        return out

    def started(self) -> list[str]:
        return re.findall(r"\[INFO\] \[(\w+-\d+)\]: process started", self.log())

    def assert_ctrl_c_ends_all_cleanly(self, expected: list[str]) -> None:
        """Ctrl-C: launch and every process in ``expected`` (``dehaze_node-1``, ...) end with exit code 0."""
        rc = self.ctrl_c(timeout=90)
        exits, tail = self.exits(), self.log()[-3000:]
        assert sorted(exits) == sorted(self.started()) == sorted(expected), tail
        assert all(v == "clean" for v in exits.values()), f"{exits}\n{tail}"
        assert rc == 0, tail

    def pids(self) -> dict[str, int]:
        """Each started process → its pid, as launch logged it."""
        found = re.findall(r"\[INFO\] \[(\w+-\d+)\]: process started with pid \[(\d+)\]", self.log())
        return {name: int(pid) for name, pid in found}


@contextlib.contextmanager
def launched(
    env: dict[str, str],
    args: list[str],
    log_dir: Path,
    peer: Any,
    active: tuple[str, ...] = ("/dehaze_node", "/segment_node"),
    timeout: float = 240.0,
) -> Iterator[Launch]:
    """A ``ros2 launch`` whose ``active`` nodes reached the active state (checked by the in-test peer);
    Ctrl-C'd (then killed) on exit if a test has not ended it. Start-up failures fail with its output."""
    import pytest

    env = dict(env, ROS_LOG_DIR=str(log_dir / "ros_log"))
    launch = Launch(env, args, log_dir / "launch.log")
    try:
        for fqn in active:
            peer.wait_state(fqn, "active", timeout=timeout)
    except TimeoutError as exc:
        launch.kill()
        pytest.fail(f"{exc}\n--- ros2 launch output ---\n{launch.log()[-6000:]}")
    try:
        yield launch
    finally:
        try:
            launch.ctrl_c(timeout=60)
        except TimeoutError:
            pass
        launch.kill()


#: what the ``ros2`` verbs print when discovery has not yet found the node or its services
_NOT_REACHED = ("Node not found", "Wait for service timed out")


def ros2_node(env: dict[str, str], *args: str, attempts: int = 5) -> subprocess.CompletedProcess:
    """``ros2 ARGS`` for verbs that look a node up first (lifecycle, param), through the module's
    daemon; retried a few times while discovery lags: the daemon has not seen the node yet ("Node
    not found"), or the verb's own new process has not seen the node's services within ros2param's
    fixed 5 s ("Wait for service timed out", seen under ``make test``'s two workers on 2 cores).
    Neither reached the node, so a retry cannot apply a change twice."""
    res = None
    for _ in range(attempts):
        res = ros2(env, *args, "--spin-time", "0.2")
        if not any(m in res.stdout for m in _NOT_REACHED):
            return res
        time.sleep(1.0)
    raise AssertionError(f"`ros2 {' '.join(args)}` never reached the node:\n{res.stdout if res else ''}")


@contextlib.contextmanager
def daemon(env: dict[str, str]) -> Iterator[None]:
    """The ``ros2`` daemon of ``env``'s domain for the duration of the block (stopped even when a test
    fails; one left behind by a killed test run exits after its 2 h idle timeout)."""
    ros2(env, "daemon", "start", timeout=60)
    try:
        yield
    finally:
        ros2(env, "daemon", "stop", timeout=60)


def lifecycle_set(env: dict[str, str], fqn: str, transition: str) -> tuple[bool, str]:
    """``ros2 lifecycle set FQN TRANSITION``: (whether it succeeded, its output)."""
    res = ros2_node(env, "lifecycle", "set", fqn, transition)
    out = res.stdout.strip()
    return res.returncode == 0 and "Transitioning successful" in out, out


def lifecycle_get(env: dict[str, str], fqn: str) -> str:
    """The state label ``ros2 lifecycle get`` prints (``active``, ``inactive``, ...)."""
    out = ros2_node(env, "lifecycle", "get", fqn).stdout.strip()
    return out.split()[0] if out else ""


#: path lists in which the Makefile's environment names this checkout (its install/, the repo itself)
_CHECKOUT_VARS = (
    "AMENT_PREFIX_PATH",
    "CMAKE_PREFIX_PATH",
    "COLCON_PREFIX_PATH",
    "PYTHONPATH",
    "LD_LIBRARY_PATH",
)


def _without_checkout(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the checkout's entries (other than the venv's) dropped from its path lists."""
    out = dict(env)
    venv = str(Path(sys.prefix))
    for var in _CHECKOUT_VARS:
        kept = [
            p
            for p in env.get(var, "").split(os.pathsep)
            if p and (p.startswith(venv) or not (p == str(REPO) or p.startswith(str(REPO) + os.sep)))
        ]
        if kept:
            out[var] = os.pathsep.join(kept)
        else:
            out.pop(var, None)
    return out


def build_workspace(ws: Path, env: dict[str, str], timeout: float = 900.0) -> Path:
    """``colcon build`` of this package in a fresh workspace, as the README's ROS-install section does:
    the files git would commit copied to ``ws/src/snn_perception`` (no venv, no build output), built
    without ``--symlink-install`` against the venv's ROS wheels (where /opt/ros/<distro> would be).
    Returns the workspace's ``install/setup.bash``; failures raise with colcon's output."""
    src = ws / "src" / "snn_perception"
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=60,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    venv = Path(sys.prefix)
    build_env = _without_checkout(env)
    build_env.update(AMENT_PREFIX_PATH=str(venv), CMAKE_PREFIX_PATH=str(venv))
    build_env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    cmd = [
        sys.executable,
        "-m",
        "colcon",
        "build",
        "--cmake-args",
        f"-DPython3_EXECUTABLE={sys.executable}",
        "-DBUILD_TESTING=OFF",
    ]
    res = subprocess.run(
        cmd,
        cwd=ws,
        env=build_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if res.returncode != 0:
        raise RuntimeError(f"colcon build in {ws} failed:\n{res.stdout[-4000:]}")
    return ws / "install" / "setup.bash"


def workspace_env(ros_environment: dict[str, str], setup: Path) -> dict[str, str]:
    """The module's ROS environment with only the workspace (and the tools' overlay) sourced.

    The overlay's ``local_setup.bash``, not its ``setup.bash``: the latter re-sources the prefixes
    that were sourced when the overlay was built (this checkout's ``install/`` when ``make test``
    built it), which would put the checkout back in front of the workspace."""
    env = sourced(_without_checkout(ros_environment), setup, BUILD / "install" / "local_setup.bash")
    env.setdefault("OMP_NUM_THREADS", "2")
    return env
