"""``ros2 launch snn_perception perception.launch.py`` with no arguments, from a workspace built the way
the README's ROS-install section builds it (sources in ``src/``, plain ``colcon build``, only the
workspace's ``install/setup.bash`` sourced), driven with the real ``ros2`` CLI.

One launched system serves the module: its nodes must come up active on the default names and topics,
take the shipped ``config/perception.yaml`` through ``ros2 param load`` without a refusal (the
``autostart`` parameter used to be read-only), and end cleanly, every process with exit code 0,
when Ctrl-C reaches the whole process group as it does in a terminal (launch then sends its own
SIGINT too: segment_node used to die with -2).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from nodeproc import image_msg
from ros2proc import build_workspace, daemon, launched, lifecycle_get, ros2, ros2_node, workspace_env


@pytest.fixture(scope="module")
def workspace(ros_environment, ros2_tools, tmp_path_factory):
    ws = tmp_path_factory.mktemp("ros2_ws")
    try:
        setup = build_workspace(ws, ros_environment)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    return ws, dict(workspace_env(ros_environment, setup), ROS_LOG_DIR=str(ws / "ros_log"))


@pytest.fixture(scope="module")
def ws_env(workspace):
    with daemon(workspace[1]):
        yield workspace[1]


@pytest.fixture(scope="module")
def system(ws_env, peer, tmp_path_factory):
    with launched(ws_env, [], tmp_path_factory.mktemp("launch_defaults"), peer) as launch:
        yield launch


def test_the_workspace_install_is_complete_and_found_first(workspace):
    ws, env = workspace
    prefix = ros2(env, "pkg", "prefix", "snn_perception").stdout.strip()
    assert prefix == str(ws / "install" / "snn_perception"), prefix
    share = ws / "install" / "snn_perception" / "share" / "snn_perception"
    for rel in ("launch/perception.launch.py", "config/perception.yaml", "config/fastdds_localhost.xml"):
        assert (share / rel).is_file() and not (share / rel).is_symlink(), rel
    for exe in ("dehaze_node", "segment_node", "image_source_node"):
        path = ws / "install" / "snn_perception" / "lib" / "snn_perception" / exe
        assert path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o111, exe


def test_defaults_start_both_nodes_active_on_the_default_topics(system, workspace, ws_env, peer):
    from sensor_msgs.msg import Image
    from snn_perception.msg import EnergyTelemetry

    for name, pid in system.pids().items():  # the executables of the workspace's install ran
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        assert str(workspace[0] / "install" / "snn_perception" / "lib") in cmdline, (name, cmdline)

    assert lifecycle_get(ws_env, "/dehaze_node") == "active"
    assert peer.get_state("/segment_node") == "active"
    log = system.log()
    assert "listening on /camera/image_raw" in log and "listening on /dehaze_node/enhanced" in log, log
    dehaze = peer.collect(EnergyTelemetry, "/dehaze_node/telemetry")
    segment = peer.collect(EnergyTelemetry, "/segment_node/telemetry")
    pub = peer.publisher(Image, "/camera/image_raw", reliable=False)
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    deadline = time.monotonic() + 120
    i = 0
    while not (len(dehaze) and len(segment)) and time.monotonic() < deadline:
        pub.publish(image_msg(rgb, (100 + i) * 10**9, "camera"))  # the camera → dehaze → segment chain
        i += 1
        time.sleep(0.5)
    assert len(dehaze) and len(segment), f"no telemetry from both nodes\n{system.log()[-3000:]}"
    tel = segment.snapshot()[0]
    assert (tel.input_width, tel.input_height) == (64, 48) and tel.node_name == "/segment_node"
    peer.node.destroy_publisher(pub)


@pytest.mark.parametrize("node", ["/dehaze_node", "/segment_node"])
def test_ros2_param_load_of_the_shipped_yaml_sets_every_parameter(system, workspace, ws_env, node):
    share = workspace[0] / "install" / "snn_perception" / "share" / "snn_perception"
    yaml = share / "config" / "perception.yaml"
    out = ros2_node(ws_env, "param", "load", node, str(yaml), "--timeout", "30").stdout
    assert "failed" not in out.lower(), out
    for name in ("autostart", "timesteps", "device", "input_transport", "weights"):
        assert f"Set parameter {name} successful" in out, out
    if node == "/segment_node":
        assert "Set parameter overlay_alpha successful" in out, out


def test_autostart_refuses_a_change_with_the_reason(system, ws_env, peer):
    out = ros2_node(ws_env, "param", "set", "/dehaze_node", "autostart", "false").stdout
    assert "Setting parameter failed" in out and "start-up only" in out and "restart the node" in out, out
    assert peer.get_params("/dehaze_node", "autostart") == [True]


def test_ros2_param_set_of_the_wrong_type_says_what_to_write(system, ws_env, peer):
    # the CLI reads `1` as an integer; rclpy's own refusal was "expected '3' got '2'"
    out = ros2_node(ws_env, "param", "set", "/dehaze_node", "strength", "1").stdout
    assert (
        "Setting parameter failed: strength: 1 is an integer, the parameter is a double (write 1.0" in out
    ), out
    out = ros2_node(ws_env, "param", "set", "/segment_node", "timesteps", "four").stdout
    assert "timesteps: 'four' is a string, the parameter is an integer" in out, out
    out = ros2_node(ws_env, "param", "set", "/dehaze_node", "strength", "0.8").stdout
    assert "Set parameter successful" in out, out
    assert peer.get_params("/dehaze_node", "strength") == [0.8]


def test_ctrl_c_ends_launch_and_every_node_with_exit_code_0(system):
    system.assert_ctrl_c_ends_all_cleanly(["dehaze_node-1", "segment_node-2"])
