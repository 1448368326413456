"""``autostart: false`` in a ``params_file``: the launch file drives the nodes to active once, then
the manual lifecycle recipe (deactivate, set weights, cleanup, configure, activate) is the user's.

It used to be broken twice: the launch file's "activate once configured" event handler fired again
on the manual configure, so the recipe's own ``activate`` was refused; and the file's values of
``autostart``, ``device`` and ``timesteps`` were overwritten by the launch arguments' defaults (the
nodes configured themselves, on ``auto``, at T = 0), so a vehicle's own parameter file was ignored.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml
from nodeproc import REPO
from ros2proc import launched, lifecycle_set, ros2_node

DEHAZE = "/dehaze_node"


@pytest.fixture(scope="module")
def system(ros2_env, peer, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("launch_manual")
    params = yaml.safe_load((REPO / "config" / "perception.yaml").read_text())
    params["/**"]["ros__parameters"].update(autostart=False, device="cpu", timesteps=2)
    params["dehaze_node"]["ros__parameters"]["stregth"] = 0.5  # a typo: warned about, not fatal
    (log_dir / "vehicle.yaml").write_text(yaml.safe_dump(params))
    with launched(ros2_env, [f"params_file:={log_dir / 'vehicle.yaml'}"], log_dir, peer) as launch:
        yield launch


def test_autostart_false_nodes_are_brought_to_active_by_the_launch_file(system, peer):
    for node in (DEHAZE, "/segment_node"):  # the file's values, not the launch arguments' defaults
        assert peer.get_params(node, "autostart", "device", "timesteps") == [False, "cpu", 2], node
    assert system.log().count("active: listening on") == 2, system.log()[-3000:]
    assert "configured: snntrans_dhz/official, T=2 weights dhz (" in system.log(), system.log()[-3000:]
    log = system.log()
    assert "/dehaze_node has no parameter 'stregth'" in log and "did you mean 'strength'?" in log, log[-3000:]
    assert "[dehaze_node]: parameter 'stregth' is not read by this node" in log, "and the node says so too"


def test_the_manual_lifecycle_recipe_is_not_overridden_by_the_launch_file(system, ros2_env, peer):
    ok, out = lifecycle_set(ros2_env, DEHAZE, "deactivate")
    assert ok, out
    out = ros2_node(ros2_env, "param", "set", DEHAZE, "weights", "dhz").stdout
    assert "Set parameter successful" in out, out
    ok, out = lifecycle_set(ros2_env, DEHAZE, "cleanup")
    assert ok, out
    ok, out = lifecycle_set(ros2_env, DEHAZE, "activate")  # unconfigured: refused, listing configure
    assert not ok and "Unknown transition requested" in out and "configure" in out, out
    ok, out = lifecycle_set(ros2_env, DEHAZE, "configure")
    assert ok, out
    deadline = time.monotonic() + 1.5  # the old event handler activated within milliseconds
    while time.monotonic() < deadline:
        assert peer.get_state(DEHAZE) == "inactive", "the launch file activated the node by itself"
        time.sleep(0.3)
    ok, out = lifecycle_set(ros2_env, DEHAZE, "activate")
    assert ok, out
    assert peer.get_state(DEHAZE) == "active"
    assert peer.get_state("/segment_node") == "active"
    assert system.log().count("[dehaze_node]: configured:") == 2, system.log()[-3000:]


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (an orphan's zombie, which nothing here may reap, counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_sigterm_to_ros2_launch_alone_ends_every_node(system, tmp_path_factory):
    """``kill PID`` of ros2 launch (docker stop, timeout, a supervisor) makes launch exit at once
    without stopping its nodes ("using SIGTERM can result in orphaned processes"); the three nodes
    ran on. Ctrl-C to the whole group is checked by the other launch modules."""
    pids = system.pids()
    assert sorted(pids) == ["dehaze_node-1", "segment_node-2"], system.log()[-3000:]
    system.proc.send_signal(signal.SIGTERM)
    assert system.wait(30) == -signal.SIGTERM
    deadline = time.monotonic() + 20  # checked once a second, then a teardown
    while any(_running(p) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    running = [name for name, pid in pids.items() if _running(pid)]
    assert not running, f"{running} still run after ros2 launch ended"
    logs = "".join(f.read_text() for f in system.log_path.parent.glob("ros_log/*.log"))
    for name in ("dehaze_node", "segment_node"):
        assert f"[{name}]: ros2 launch (pid {system.proc.pid}) ended without stopping this node" in logs
    assert "Traceback" not in logs, logs[-3000:]
