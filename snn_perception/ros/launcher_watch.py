"""A node started by our launch file ends when ``ros2 launch`` ends without stopping it.

``ros2 launch`` stops its nodes on Ctrl-C, but on SIGTERM or SIGQUIT (``kill PID``, ``timeout``,
a supervisor that signals only the launch process) it exits at once, warning "using SIGTERM can
result in orphaned processes": the nodes ran on, holding the cores, and the next launch started a
second set under the same names. The launch file gives each node its own pid in
:data:`LAUNCH_PID_ENV`; the node checks once a second that the launch still runs and otherwise
shuts down as on SIGTERM (teardown, exit code 0). Without the variable (``ros2 run``, ``bringup``,
a launch file of the user's own) nothing is watched.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from typing import Any

LAUNCH_PID_ENV = "SNN_PERCEPTION_LAUNCH_PID"
CHECK_PERIOD_S = 1.0


def launcher_pid(environ: Mapping[str, str] = os.environ) -> int | None:
    """The pid the launch file handed down (None: not started by it, or not a pid)."""
    text = environ.get(LAUNCH_PID_ENV, "").strip()
    # pid 1: launch is a container's init, whose end ends every process in it anyway
    return int(text) if text.isdigit() and int(text) > 1 else None


def launcher_gone(pid: int, parent_at_start: int) -> bool:
    """Whether the launch process ``pid`` has ended. A direct child is re-parented the moment its
    parent exits (even before anyone reaps it); through a wrapper (a launch ``prefix``) the pid is
    looked up instead."""
    if parent_at_start == pid:
        return os.getppid() != pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


def watch_launcher(node: Any, environ: Mapping[str, str] = os.environ) -> None:
    """Give ``node`` a timer that shuts the process down once its ``ros2 launch`` has ended."""
    pid = launcher_pid(environ)
    if pid is None:
        return
    parent = os.getppid()
    timer = None

    def check() -> None:
        if not launcher_gone(pid, parent):
            return
        timer.cancel()
        node.get_logger().warning(
            f"ros2 launch (pid {pid}) ended without stopping this node (SIGTERM or SIGKILL?): shutting down"
        )
        os.kill(os.getpid(), signal.SIGTERM)  # rclpy's handler: the same clean end as a kill of the node

    timer = node.create_timer(CHECK_PERIOD_S, check)
