"""``ros2 launch`` with ``namespace:=rov source:=FOLDER input_transport:=compressed timesteps:=2``,
driven with ``ros2 service call`` and ``ros2 lifecycle set`` as a user on the vehicle would.

One launched system serves the module: an image source publishing JPEGs of a small folder into
``/rov/camera/image_raw/compressed``, the dehazer reading them, the segmenter reading the dehazer.
``~/load_model`` swaps the ANN baseline in (it runs once per frame: the reply, telemetry and
diagnostics say ``timesteps 0`` and name it ``unet``, never ``unet/``), illegal lifecycle transitions
are refused, a lifecycle shutdown finalizes a node, and Ctrl-C ends all three processes with exit
code 0.
"""

from __future__ import annotations

import re
import time

import cv2
import numpy as np
import pytest
from nodeproc import diagnostics_of, wait_for
from ros2proc import launched, lifecycle_set, ros2

DEHAZE, SEGMENT = "/rov/dehaze_node", "/rov/segment_node"
LOAD = "snn_perception/srv/LoadModel"


@pytest.fixture(scope="module")
def system(ros2_env, peer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(1)
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.jpg"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    args = ["namespace:=rov", f"source:={folder}", "input_transport:=compressed", "rate_hz:=2"]
    args.append("timesteps:=2")
    log_dir = tmp_path_factory.mktemp("launch_namespaced")
    with launched(ros2_env, args, log_dir, peer, active=(DEHAZE, SEGMENT)) as launch:
        yield launch


@pytest.fixture(scope="module")
def telemetry(system, peer):
    from snn_perception.msg import EnergyTelemetry

    return {fqn: peer.collect(EnergyTelemetry, f"{fqn}/telemetry") for fqn in (DEHAZE, SEGMENT)}


def _fresh(collector, timeout: float = 90.0):
    """The next telemetry message after now."""
    collector.clear()
    wait_for(lambda: len(collector), timeout, f"telemetry on {collector.topic}")
    return collector.snapshot()[-1]


def test_namespace_source_and_compressed_transport_wire_the_pipeline(system, telemetry):
    log = system.log()
    assert "on /rov/camera/image_raw/compressed" in log, log  # the image source publishes there
    assert "listening on /rov/camera/image_raw/compressed" in log, log  # ... and the dehazer reads it
    assert "listening on /rov/dehaze_node/enhanced" in log, log
    for fqn in (DEHAZE, SEGMENT):
        tel = _fresh(telemetry[fqn])
        assert tel.node_name == fqn and tel.timesteps == 2, tel  # timesteps:=2 reached both nodes
        assert (tel.input_width, tel.input_height) == (64, 48)


def test_ros2_service_call_load_model_swaps_in_the_ann_which_reports_no_timesteps(
    system, ros2_env, peer, telemetry
):
    from diagnostic_msgs.msg import DiagnosticArray

    from snn_perception.ros.telemetry import ANN_ARCHS

    diagnostics = peer.collect(DiagnosticArray, "/diagnostics")
    out = ros2(ros2_env, "service", "call", f"{SEGMENT}/load_model", LOAD, "{weights: unet_suim_ann}").stdout
    assert "success=True" in out and "timesteps=0" in out and "(ANN, no timesteps)" in out, out
    arch = re.search(r"model_name='(\w+)'", out).group(1)
    assert arch in ANN_ARCHS and f"{arch}/" not in out, out  # no "unet/" for an empty variant
    tel = _fresh(telemetry[SEGMENT])
    assert (tel.model_name, tel.model_variant, tel.timesteps) == (arch, "", 0)
    wait_for(lambda: diagnostics_of(diagnostics, SEGMENT).get("model") == arch, 30, f"diagnostics: {arch}")
    assert diagnostics_of(diagnostics, SEGMENT)["timesteps"] == "0"
    # a missing file is refused with the reason, and the ANN keeps serving
    out = ros2(ros2_env, "service", "call", f"{SEGMENT}/load_model", LOAD, "{weights: /no/such.pth}").stdout
    assert "success=False" in out and "no such file" in out and f"model_name='{arch}'" in out, out
    out = ros2(
        ros2_env, "service", "call", f"{SEGMENT}/load_model", LOAD, "{weights: spiking_unet, timesteps: 3}"
    ).stdout
    assert "success=True" in out and "model_name='spiking_" in out and "timesteps=3" in out, out
    assert _fresh(telemetry[SEGMENT]).timesteps == 3


def test_ros2_lifecycle_set_refuses_transitions_the_state_does_not_have(system, ros2_env, peer, telemetry):
    """Illegal orders (the legal round trip is the manual recipe of test_launch_manual): the CLI
    refuses them listing the available transitions, and the node keeps serving."""
    for transition in ("configure", "cleanup"):
        ok, out = lifecycle_set(ros2_env, DEHAZE, transition)
        assert not ok and "Unknown transition requested" in out and "deactivate" in out, out
    assert peer.get_state(DEHAZE) == "active"
    assert _fresh(telemetry[DEHAZE]).timesteps == 2


def test_lifecycle_shutdown_finalizes_the_node_and_its_process_keeps_running(system, ros2_env, peer):
    ok, out = lifecycle_set(ros2_env, SEGMENT, "shutdown")
    assert ok, out
    assert peer.get_state(SEGMENT) == "finalized"
    time.sleep(1.0)
    assert "segment_node-3" not in system.exits(), system.log()[-2000:]


def test_ctrl_c_ends_launch_and_every_node_with_exit_code_0(system):
    system.assert_ctrl_c_ends_all_cleanly(["image_source_node-1", "dehaze_node-2", "segment_node-3"])
