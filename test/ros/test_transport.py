"""Our interfaces and large images cross process boundaries intact over loopback."""

from __future__ import annotations

import hashlib
import json

from rosproc import _test_image, spawn

TELEMETRY = {
    "header": {"stamp": {"sec": 1700000000, "nanosec": 123456789}, "frame_id": "rov/camera_optical"},
    "node_name": "/rov/dehaze_node",
    "model_name": "snntrans_dhz",
    "model_variant": "official",
    "weights_id": "0123456789ab",
    "timesteps": 4,
    "input_width": 720,
    "input_height": 405,
    "model_width": 720,
    "model_height": 408,
    "queue_wait_ms": 0.25,
    "preprocess_ms": 1.5,
    "inference_ms": 80.75,
    "postprocess_ms": 2.5,
    "end_to_end_ms": 85.0,
    "cpu_time_ms": 160.5,
    "frames_processed": 12345678901,
    "frames_dropped": 42,
    "ops_counted": True,
    "synaptic_ops": 1.234567890123e10,
    "analog_macs": 9.87654321e8,
    "energy_j": 0.0156543,
    "e_ac_pj": 0.8999999761581421,
    "e_mac_pj": 4.599999904632568,
    "mean_spike_rate": 0.125,
    "layer_names": ["spikecode_rgb.lif1", "H_est.r_lif1_Hx", "BL_est_conv.lif2"],
    "layer_spike_rates": [0.5, 0.25, 0.0625],
    "max_timesteps": 8,
    "latency_budget_ms": 100.5,
    "energy_budget_mj": 2.25,
    "arrival_to_output_ms": 97.75,
    "budget_missed": True,
}


def _exchange(env: dict, type_name: str, pub_args: list[str], sub_args: list[str]) -> list[dict]:
    sub = spawn(["sub", "--type", type_name, "--topic", "/snn_test", *sub_args], env)
    pub = spawn(["pub", "--type", type_name, "--topic", "/snn_test", "--count", "0", *pub_args], env)
    try:
        out, err = sub.communicate(timeout=40)
    finally:
        pub.kill()
        pub.communicate(timeout=10)
    assert sub.returncode == 0, f"receiver got nothing (rc={sub.returncode}): {err[-2000:]}"
    return [json.loads(line)["msg"] for line in out.splitlines() if line.startswith('{"msg"')]


def test_energy_telemetry_arrives_with_every_field_intact(ros_environment):
    msgs = _exchange(
        ros_environment,
        "snn_perception/msg/EnergyTelemetry",
        ["--json", json.dumps(TELEMETRY), "--timeout", "30"],
        ["--timeout", "30"],
    )
    assert msgs, "no telemetry received"
    assert msgs[0] == TELEMETRY


def test_720p_rgb8_image_crosses_processes_best_effort(ros_environment):
    width, height = 1280, 720
    msgs = _exchange(
        ros_environment,
        "sensor_msgs/msg/Image",
        ["--image", f"{width}x{height}", "--reliability", "best_effort", "--rate", "5", "--timeout", "30"],
        ["--reliability", "best_effort", "--timeout", "30"],
    )
    assert msgs, "no 1280x720 image received: is the Fast DDS profile in use?"
    img = msgs[0]
    assert (img["width"], img["height"], img["encoding"], img["step"]) == (width, height, "rgb8", 3 * width)
    expected = _test_image(width, height)
    assert img["data"] == {"len": len(expected), "sha256": hashlib.sha256(expected).hexdigest()}
