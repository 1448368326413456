"""The launch-pid watch's parts (the whole: test/ros/test_launch_manual.py, SIGTERM to ros2 launch)."""

from __future__ import annotations

import os
import subprocess
import sys

from snn_perception.ros.launcher_watch import LAUNCH_PID_ENV, launcher_gone, launcher_pid


def test_only_a_plausible_pid_turns_the_watch_on():
    assert launcher_pid({}) is None
    for bad in ("", "abc", "-5", "1", "0", "12.5"):
        assert launcher_pid({LAUNCH_PID_ENV: bad}) is None, bad
    assert launcher_pid({LAUNCH_PID_ENV: " 4242 "}) == 4242


def test_the_parent_or_the_pid_decides_whether_launch_has_ended():
    parent = os.getppid()
    assert not launcher_gone(parent, parent)  # a direct child whose parent runs
    assert launcher_gone(os.getpid(), os.getpid())  # re-parented: the parent it had is not its parent
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # reaped: the pid no longer exists
    assert launcher_gone(ended.pid, parent_at_start=os.getpid())
    assert not launcher_gone(os.getpid(), parent_at_start=parent)  # through a wrapper: looked up
