"""A warm ``snn-perception`` launcher for the tests: imports torch once, then forks one child per command.

Most CLI tests check what a command refuses or writes; each paid ~1.2 s of a 1.4 s run just to import
torch in a fresh interpreter. This server imports the CLI and its heavy modules once; for every request
(one JSON line on its stdin) it forks a child that changes to the requested folder and environment,
points stdin at /dev/null and stdout/stderr at the requested files, and runs exactly what
``python -m snn_perception.cli ARGS`` runs. Nothing has run in the parent but imports (no torch op, so
no OpenMP pool exists to be broken by ``fork``). Replies: one JSON line ``{"rc": ..., "timed_out": ...}``.

``TQDM_DISABLE`` is set before torch (which imports tqdm) loads, as the CLI itself sets it for a
command whose stderr is not a terminal: a child's stderr is always a file here. Since tqdm reads that
switch only when first imported, checks of the switch itself run in a fresh interpreter (``cold_cli``).
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import sys
import time

#: what the verbs load (torch and its neighbours, our models): imported once, here; never rclpy, whose
#: absence the ROS-free verbs are tested for in a fresh interpreter (``test_layering``)
WARM = (
    "torch",
    "cv2",
    "kornia",
    "safetensors.torch",
    "rosbags.rosbag2",
    *(f"snn_perception.commands.{verb}" for verb in ("enhance", "segment", "bench", "evaluate", "replay")),
    "snn_perception.runtime.engine",
)

#: set in the server's environment to wait by polling, as where ``pidfd_open`` is missing (tested)
POLL_ENV = "SNN_TEST_WARM_CLI_POLL"


def _run_child(req: dict, channels: tuple[int, int]) -> None:
    """In the forked child: become the command. Never returns (exits like the real interpreter)."""
    for fd in channels:
        os.close(fd)
    os.setsid()  # a timeout kills the command's own children (DataLoader workers) with it
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for src, dst in ((null, 0), (out, 1), (err, 2)):
        os.dup2(src, dst)
        os.close(src)
    import snn_perception.cli as cli

    sys.argv = [cli.__file__, *req["argv"]]
    # what ``python -m snn_perception.cli`` runs; an uncaught exception prints its traceback and exits 1
    sys.exit(cli.main())


def _ended_in_time(pid: int, timeout: float) -> bool:
    """Whether the child ended within ``timeout`` (left unreaped for the caller's ``waitpid``)."""
    try:
        pidfd = None if os.environ.get(POLL_ENV) else os.pidfd_open(pid)
    except OSError:  # a kernel or sandbox without pidfd_open
        pidfd = None
    if pidfd is not None:
        try:
            return bool(select.select([pidfd], [], [], timeout)[0])
        finally:
            os.close(pidfd)
    deadline = time.monotonic() + timeout  # poll, as subprocess itself falls back to
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        time.sleep(0.005)
    return False


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    """The child's return code (negative: killed by that signal, as ``subprocess`` reports it) and
    whether it ran out of time (then it and its children were killed)."""
    ended = _ended_in_time(pid, timeout)
    if not ended:
        os.killpg(pid, signal.SIGKILL)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), not ended


def serve() -> None:
    # requests and replies move to private descriptors, so the children inherit no pipe of ours
    requests = os.fdopen(os.dup(0), "r")
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    os.environ["TQDM_DISABLE"] = "1"
    # the package first: it sets OMP_WAIT_POLICY before OpenMP loads with torch, as in a real run
    cli = importlib.import_module("snn_perception.cli")
    cli.build_parser()
    for name in WARM:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional part this install lacks: its verbs say so themselves
            pass

    replies.write('{"ready": true}\n')
    replies.flush()
    for line in requests:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _run_child(req, (requests.fileno(), replies.fileno()))
        rc, timed_out = _wait(pid, float(req["timeout"]))
        replies.write(json.dumps({"rc": rc, "timed_out": timed_out}) + "\n")
        replies.flush()


if __name__ == "__main__":
    serve()
