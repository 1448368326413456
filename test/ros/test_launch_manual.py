"""``ros2 launch ... autostart:=false``: the launch file drives the nodes to active once, then the
manual lifecycle recipe (deactivate, set weights, cleanup, configure, activate) is the user's.

It used to be broken: the launch file's "activate once configured" event handler fired again on
the manual configure, so the recipe's own ``activate`` was refused.
"""

from __future__ import annotations

import time

import pytest
from ros2proc import launched, lifecycle_set, ros2_node

DEHAZE = "/dehaze_node"


@pytest.fixture(scope="module")
def system(ros2_env, peer, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("launch_manual")
    with launched(ros2_env, ["autostart:=false", "device:=cpu"], log_dir, peer) as launch:
        yield launch


def test_autostart_false_nodes_are_brought_to_active_by_the_launch_file(system, peer):
    assert peer.get_params(DEHAZE, "autostart") == [False]
    assert system.log().count("active: listening on") == 2, system.log()[-3000:]


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


def test_ctrl_c_ends_launch_and_every_node_with_exit_code_0(system):
    system.assert_ctrl_c_ends_all_cleanly(["dehaze_node-1", "segment_node-2"])
