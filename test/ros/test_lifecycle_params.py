"""Must show 2 and 3: a dehaze_node driven from this (separate) process through its lifecycle and
parameter services and ``~/load_model``."""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest
from nodeproc import (
    dhz_weights,
    dhz_weights_or_skip,
    image_msg,
    running_node,
    stamp_ns,
    wait_for,
)

NAMESPACE = f"/lc{os.getpid()}"
FQN = f"{NAMESPACE}/dehaze_node"
FRAME_ID = "cam"


def _frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, 256, dtype=np.float32)
    img = np.stack(
        [np.add.outer(base, base) / 2, np.tile(base, (256, 1)), np.tile(base[:, None], (1, 256))], -1
    )
    return np.clip(img * 0.6 + rng.integers(0, 40, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def topics(peer):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image
    from snn_perception.msg import EnergyTelemetry

    return {
        "out": peer.collect(Image, f"{FQN}/enhanced"),
        "tel": peer.collect(EnergyTelemetry, f"{FQN}/telemetry"),
        "diag": peer.collect(DiagnosticArray, "/diagnostics", depth=20),
        "pub": peer.publisher(Image, f"{FQN}/image"),
    }


@pytest.fixture(scope="module")
def node(ros_environment, peer, topics, tmp_path_factory):
    params = {"weights": str(dhz_weights_or_skip()), "device": "cpu", "autostart": False, "count_ops": False}
    logs = tmp_path_factory.mktemp("lifecycle_logs")
    with running_node(
        peer, "snn_perception.ros.dehaze_node", NAMESPACE, params, ros_environment, logs, state="unconfigured"
    ) as proc:
        yield proc


def _last_error(topics) -> str:
    for arr in reversed(topics["diag"].snapshot()):
        for st in arr.status:
            if st.name.startswith(FQN):
                return {kv.key: kv.value for kv in st.values}.get("last error", "")
    return ""


def _send_and_wait(topics, stamp: int, timeout: float = 30.0):
    topics["pub"].publish(image_msg(_frame(stamp % 7), stamp, FRAME_ID))
    wait_for(lambda: stamp in topics["tel"].stamps(), timeout, f"telemetry of frame {stamp}")
    return next(t for t in topics["tel"].snapshot() if stamp_ns(t.header) == stamp)


def test_autostart_off_leaves_the_node_unconfigured(peer, node):
    assert peer.get_state(FQN) == "unconfigured"


def test_configure_with_corrupt_or_missing_weights_fails_with_a_reason_and_node_stays_usable(
    peer, node, topics, tmp_path
):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"this is not a checkpoint" * 100)
    assert all(r.successful for r in peer.set_params(FQN, weights=str(corrupt)))
    assert not peer.change_state(FQN, "configure")
    assert peer.get_state(FQN) == "unconfigured"
    wait_for(lambda: "corrupt.pth" in _last_error(topics), 5, "diagnostics naming the corrupt file")

    vanishing = tmp_path / "vanishing.pth"
    shutil.copy(dhz_weights(), vanishing)
    assert all(r.successful for r in peer.set_params(FQN, weights=str(vanishing)))
    vanishing.unlink()
    assert not peer.change_state(FQN, "configure")
    assert peer.get_state(FQN) == "unconfigured"
    wait_for(lambda: "vanishing.pth" in _last_error(topics), 5, "diagnostics naming the missing file")

    assert all(r.successful for r in peer.set_params(FQN, weights=str(dhz_weights())))
    assert peer.change_state(FQN, "configure"), node.log()
    assert peer.get_state(FQN) == "inactive"
    assert peer.change_state(FQN, "activate")
    assert peer.get_state(FQN) == "active"
    wait_for(lambda: topics["pub"].get_subscription_count() > 0, 30, "the node to subscribe")
    tel = _send_and_wait(topics, 10**9)
    assert tel.model_name == "snntrans_dhz"


def test_inactive_node_publishes_nothing_and_resumes_on_activate(peer, node, topics):
    assert peer.change_state(FQN, "deactivate")
    assert peer.get_state(FQN) == "inactive"
    n_out, n_tel = len(topics["out"]), len(topics["tel"])
    for i in range(5):
        topics["pub"].publish(image_msg(_frame(i), (50 + i) * 10**9, FRAME_ID))
        time.sleep(0.2)
    time.sleep(1.5)
    assert (len(topics["out"]), len(topics["tel"])) == (n_out, n_tel), "an inactive node published"
    assert "inactive: incoming frames are ignored until activate" in node.log(), "the operator is told"
    assert peer.change_state(FQN, "activate")
    wait_for(lambda: topics["pub"].get_subscription_count() > 0, 30, "the node to subscribe")
    assert _send_and_wait(topics, 60 * 10**9).frames_processed == 1, "counters restart at activation"


@pytest.mark.parametrize(
    "name,value,words",
    [
        ("timesteps", 65, "out of range"),
        ("timesteps", -1, "out of range"),
        ("timesteps", "four", "timesteps: 'four' is a string, the parameter is an integer"),
        ("timesteps", 2.5, "timesteps: 2.5 is a double, the parameter is an integer"),
        ("strength", 1, "strength: 1 is an integer, the parameter is a double (write 1.0"),
        ("input_width", 100, "step"),
        ("input_height", 5000, "out of range"),
        ("max_input_pixels", 0, "out of range"),
        ("qos_depth", 0, "out of range"),
        ("device", "tpu", "cpu, cuda, auto"),
        ("input_transport", "theora", "raw, compressed"),
        ("weights", "/no/such/weights.pth", "no such file"),
        ("weights", "not_a_shipped_model", "no such file"),
        ("weights", "spiking_unet", "'spiking_unet' is a segment model; dehaze weights: dhz,"),
        ("count_ops", "yes", "count_ops: 'yes' is a string, the parameter is a bool (true or false)"),
        ("autostart", True, "start-up only"),  # the node runs with autostart false
    ],
)
def test_bad_parameter_values_are_refused_with_a_reason(peer, node, name, value, words):
    before = peer.get_params(FQN, name)
    (result,) = peer.set_params(FQN, **{name: value})
    assert not result.successful
    assert words in result.reason.lower() or words in result.reason, result.reason
    assert peer.get_params(FQN, name) == before


def test_timesteps_is_hot_and_shows_in_the_next_telemetry(peer, node, topics):
    assert peer.get_state(FQN) == "active"
    for t, stamp in ((2, 70), (6, 71), (0, 72)):
        assert all(r.successful for r in peer.set_params(FQN, timesteps=t))
        assert _send_and_wait(topics, stamp * 10**9).timesteps == (t or 4)


def test_max_model_pixels_is_hot_and_the_output_keeps_the_frame_size(peer, node, topics):
    """A cap below the 256×256 frame runs the model at a smaller size of the same aspect ratio (the
    telemetry says which) and publishes at the frame's size; 0 runs the frame at its own size."""
    assert peer.get_state(FQN) == "active"
    assert all(r.successful for r in peer.set_params(FQN, max_model_pixels=128 * 128))
    tel = _send_and_wait(topics, 80 * 10**9)
    assert (tel.input_width, tel.input_height) == (256, 256)
    assert (tel.model_width, tel.model_height) == (128, 128)
    wait_for(lambda: 80 * 10**9 in topics["out"].stamps(), 10, "the enhanced image of frame 80")
    out = next(m for m in topics["out"].snapshot() if stamp_ns(m.header) == 80 * 10**9)
    assert (out.width, out.height) == (256, 256)
    assert all(r.successful for r in peer.set_params(FQN, max_model_pixels=0))
    tel = _send_and_wait(topics, 81 * 10**9)
    assert (tel.model_width, tel.model_height) == (256, 256)
    (refused,) = peer.set_params(FQN, max_model_pixels=-1)
    assert not refused.successful


def _stream(topics, stop: threading.Event, rate_hz: float = 30.0) -> list[int]:
    sent = []
    i = 0
    while not stop.is_set():
        stamp = (1000 + i) * 10**9
        topics["pub"].publish(image_msg(_frame(i % 5), stamp, FRAME_ID))
        sent.append(stamp)
        i += 1
        time.sleep(1.0 / rate_hz)
    return sent


def _max_gap_during(topics, action) -> tuple[float, float, object]:
    """Stream frames faster than the node runs; (max output gap, median gap, action result)."""
    topics["tel"].clear()
    stop = threading.Event()
    streamer = threading.Thread(target=_stream, args=(topics, stop), daemon=True)
    streamer.start()
    try:
        wait_for(lambda: len(topics["tel"]) >= 5, 30, "a steady stream of outputs")
        start = time.monotonic()
        result = action()
        end = time.monotonic()
        n = len(topics["tel"])
        wait_for(lambda: len(topics["tel"]) >= n + 5, 30, "outputs after the action")
    finally:
        stop.set()
        streamer.join(timeout=5)
    with topics["tel"].lock:
        times = [t for t in topics["tel"].times]
    gaps = np.diff(times)
    window = [g for t, g in zip(times[1:], gaps, strict=True) if t >= start - 0.5 and t - g <= end + 0.5]
    return max(window), float(np.median(gaps)), result


def test_load_model_with_a_bad_file_keeps_the_old_model_serving_without_a_gap(peer, node, topics, tmp_path):
    from snn_perception.srv import LoadModel

    bad = tmp_path / "bad.pth"
    bad.write_bytes(os.urandom(4096))
    old_id = _send_and_wait(topics, 5000 * 10**9).weights_id

    def load_bad():
        return peer.call(LoadModel, f"{FQN}/load_model", LoadModel.Request(weights=str(bad), timesteps=0))

    max_gap, median_gap, resp = _max_gap_during(topics, load_bad)
    print(
        f"load_model(bad): max output gap {max_gap * 1e3:.0f} ms, median interval {median_gap * 1e3:.0f} ms"
    )
    assert not resp.success
    assert "bad.pth" in resp.message and "still serving" in resp.message, resp.message
    assert resp.weights_id == old_id
    assert max_gap <= 2 * median_gap + 0.05, f"gap {max_gap:.3f} s vs frame interval {median_gap:.3f} s"
    assert {t.weights_id for t in topics["tel"].snapshot()} == {old_id}
    assert peer.get_params(FQN, "weights") == [str(dhz_weights())]
    other_task = LoadModel.Request(weights="unet_suim_ann", timesteps=0)  # refused before any load
    resp = peer.call(LoadModel, f"{FQN}/load_model", other_task)
    assert not resp.success and "is a segment model" in resp.message and "still serving" in resp.message
    resp = peer.call(LoadModel, f"{FQN}/load_model", LoadModel.Request(weights="", timesteps=0))
    assert not resp.success and "weights is empty; give a model name (dhz, " in resp.message, resp.message


def test_load_model_swaps_between_frames(peer, node, topics, tmp_path):
    from snn_perception.srv import LoadModel

    copy = tmp_path / "dhz_copy.pth"
    shutil.copy(dhz_weights(), copy)

    def load_good():
        req = LoadModel.Request(weights=str(copy), timesteps=3)
        return peer.call(LoadModel, f"{FQN}/load_model", req, timeout=120)

    max_gap, median_gap, resp = _max_gap_during(topics, load_good)
    print(
        f"load_model(good): max output gap {max_gap * 1e3:.0f} ms, median interval {median_gap * 1e3:.0f} ms"
    )
    assert resp.success, resp.message
    assert (resp.model_name, resp.timesteps) == ("snntrans_dhz", 3)
    assert f"weights {copy} ({resp.weights_id})" in resp.message, "names the weights, not only their hash"
    # loading shares the CPU with inference, so frames slow down while it runs, but never stop
    assert max_gap <= 4 * median_gap + 0.5, f"gap {max_gap:.3f} s vs frame interval {median_gap:.3f} s"
    assert topics["tel"].snapshot()[-1].timesteps == 3
    assert peer.get_params(FQN, "weights", "timesteps") == [str(copy), 3]


def test_switching_weights_the_lifecycle_way(peer, node, topics, tmp_path):
    """deactivate → set weights → cleanup → configure → activate, all from this process."""
    from snn_perception.runtime.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(dhz_weights())
    other = tmp_path / "dhz_resaved.safetensors"  # same network, another file: another weights id
    new_id = save_checkpoint(other, ckpt.state_dict, {**ckpt.metadata, "variant": "official"})[:12]
    old_id = _send_and_wait(topics, 5001 * 10**9).weights_id
    assert new_id != old_id
    from snn_perception.runtime.weights import name_for

    serving = name_for(peer.get_params(FQN, "weights")[0])  # a shipped name, else the path
    assert peer.change_state(FQN, "deactivate")
    assert all(r.successful for r in peer.set_params(FQN, weights=str(other)))
    # /diagnostics names the weights that serve, not the parameter's new value (next configure)
    topics["diag"].clear()
    wait_for(lambda: _diag_values(topics).get("weights") == serving, 5, f"diagnostics naming {serving}")
    assert peer.change_state(FQN, "cleanup")
    assert peer.get_state(FQN) == "unconfigured"
    assert "unconfigured: model released" in node.log()
    assert peer.change_state(FQN, "configure"), node.log()
    assert peer.change_state(FQN, "activate")
    wait_for(lambda: topics["pub"].get_subscription_count() > 0, 30, "the node to subscribe again")
    assert _send_and_wait(topics, 75 * 10**9).weights_id == new_id
    wait_for(lambda: _diag_values(topics).get("weights") == str(other), 5, "diagnostics naming the new file")


def test_services_answer_while_a_long_frame_runs(peer, node, topics):
    """Inference runs in the worker thread, so lifecycle and parameter services are not blocked."""
    assert all(r.successful for r in peer.set_params(FQN, timesteps=64))
    try:
        n = len(topics["tel"])
        topics["pub"].publish(image_msg(_frame(1), 80 * 10**9, FRAME_ID))
        time.sleep(0.3)  # the frame is now in the model (T=64: about 16× a normal frame)
        t0 = time.monotonic()
        state = peer.get_state(FQN)
        values = peer.get_params(FQN, "timesteps")
        answered = time.monotonic() - t0
        still_running = len(topics["tel"]) == n
        tel = _send_and_wait(topics, 81 * 10**9, timeout=60)
    finally:
        peer.set_params(FQN, timesteps=0)
    print(f"services answered in {answered * 1e3:.0f} ms while a T=64 frame ran")
    assert (state, values) == ("active", [64])
    assert still_running, "the long frame finished before the services were asked; the test proves nothing"
    assert answered < 0.5
    assert tel.timesteps == 64


def test_deactivate_stops_output_within_one_frame(peer, node, topics):
    stop = threading.Event()
    streamer = threading.Thread(target=_stream, args=(topics, stop), daemon=True)
    streamer.start()
    try:
        wait_for(lambda: len(topics["tel"]) >= 3, 30, "outputs before deactivating")
        assert peer.change_state(FQN, "deactivate")
        n = len(topics["out"])
        time.sleep(1.5)
        after = len(topics["out"]) - n
    finally:
        stop.set()
        streamer.join(timeout=5)
    assert after == 0, f"{after} outputs arrived after deactivate returned"
    assert peer.change_state(FQN, "activate")
    wait_for(lambda: topics["pub"].get_subscription_count() > 0, 30, "the node to subscribe again")


def _diag_values(topics) -> dict[str, str]:
    for arr in reversed(topics["diag"].snapshot()):
        for st in arr.status:
            if st.name.startswith(FQN):
                return {kv.key: kv.value for kv in st.values}
    return {}


def test_cleanup_wins_over_a_load_model_in_flight(peer, node, topics):
    """A load that overlaps cleanup never brings a model back into an unconfigured node."""
    from snn_perception.srv import LoadModel

    assert peer.change_state(FQN, "deactivate")
    client = peer.node.create_client(LoadModel, f"{FQN}/load_model")
    try:
        assert client.wait_for_service(timeout_sec=30)
        future = client.call_async(LoadModel.Request(weights=str(dhz_weights()), timesteps=0))
        time.sleep(0.05)
        assert peer.change_state(FQN, "cleanup")
        wait_for(future.done, 120, "the overlapping load_model's reply")
        assert peer.get_state(FQN) == "unconfigured"
        topics["diag"].clear()
        wait_for(lambda: _diag_values(topics).get("state") == "unconfigured", 10, "diagnostics")
        assert _diag_values(topics)["model"] == "", "the loaded model was released with the node's"
        late = client.call_async(LoadModel.Request(weights=str(dhz_weights()), timesteps=0))
        wait_for(late.done, 30, "a load_model reply")
        assert not late.result().success and "unconfigured" in late.result().message
    finally:
        peer.node.destroy_client(client)
    assert peer.change_state(FQN, "configure"), node.log()
    assert peer.change_state(FQN, "activate")
    wait_for(lambda: topics["pub"].get_subscription_count() > 0, 30, "the node to subscribe again")


def test_shutdown_from_active_is_clean(peer, node, topics):
    assert peer.get_state(FQN) == "active"
    assert peer.change_state(FQN, "active_shutdown")
    assert peer.get_state(FQN) == "finalized"
    n = len(topics["tel"])
    topics["pub"].publish(image_msg(_frame(), 99 * 10**9, FRAME_ID))
    time.sleep(1.0)
    assert len(topics["tel"]) == n
    assert node.alive()
    assert "finalized: model released; the process runs on until it is stopped" in node.log()
