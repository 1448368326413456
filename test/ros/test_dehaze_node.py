"""Must show 1 (dehaze): 30 real underwater frames, raw and compressed, through a dehaze_node in its
own process: every output keeps the input stamp and frame_id, has the right encoding and size, and
exactly one plausible telemetry message arrives per processed frame."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from nodeproc import (
    compressed_msg,
    dhz_weights_or_skip,
    image_msg,
    running_node,
    shared_dir,
    stamp_ns,
    thread_cpu_s,
    wait_for,
)
from rosproc import xdist_workers

N_FRAMES = 30
FRAME_ID = "rov/camera_optical"


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    folder = shared_dir() / "data" / "lsui_pairs" / "raw"
    images = (cv2.imread(str(f)) for f in sorted(folder.glob("*.jpg")))
    out = [cv2.cvtColor(im, cv2.COLOR_BGR2RGB) for im in images if im.shape == (405, 720, 3)][:N_FRAMES]
    if len(out) < N_FRAMES:
        pytest.skip(f"needs {N_FRAMES} 720x405 LSUI frames in {folder} (../shared is absent or incomplete)")
    return out


NAMESPACE = f"/t{os.getpid()}"
FQN = f"{NAMESPACE}/dehaze_node"


@pytest.fixture(scope="module")
def outputs(peer):
    """Subscribed before the node starts, so discovery never races the first output."""
    from sensor_msgs.msg import Image
    from snn_perception.msg import EnergyTelemetry

    return peer.collect(Image, f"{FQN}/enhanced"), peer.collect(EnergyTelemetry, f"{FQN}/telemetry")


@pytest.fixture(scope="module")
def node(ros_environment, peer, outputs, tmp_path_factory):
    params = {"weights": str(dhz_weights_or_skip()), "device": "cpu", "count_ops": True}
    logs = tmp_path_factory.mktemp("dehaze_logs")
    module = "snn_perception.ros.dehaze_node"
    with running_node(peer, module, NAMESPACE, params, ros_environment, logs) as proc:
        yield proc


def _lockstep(peer, node, outputs, msgs, topic_in, msg_type):
    """Send each frame once its predecessor's output and telemetry arrived (no drops by design)."""
    out, tel = outputs
    out.clear()
    tel.clear()
    pub = peer.publisher(msg_type, f"{node.fqn}/{topic_in}")
    try:
        wait_for(lambda: pub.get_subscription_count() > 0, 30, f"{node.fqn} to subscribe {topic_in}")
        wait_for(lambda: peer.node.count_publishers(out.topic) > 0, 30, "the enhanced publisher")
        time.sleep(0.5)  # matched on our side; give the node's reader a moment to match us too
        for m in msgs:
            pub.publish(m)
            s = stamp_ns(m.header)
            try:
                wait_for(lambda s=s: s in out.stamps() and s in tel.stamps(), 30, f"the output of frame {s}")
            except TimeoutError as exc:
                raise AssertionError(f"{exc}\n--- node log ---\n{node.log()}") from None
        return out.snapshot(), tel.snapshot()
    finally:
        peer.node.destroy_publisher(pub)


def _check(sent, enhanced, telemetry, encoding):
    stamps = [stamp_ns(m.header) for m in sent]
    assert sorted(stamp_ns(m.header) for m in enhanced) == stamps, "one enhanced image per frame, same stamps"
    for m in enhanced:
        assert m.header.frame_id == FRAME_ID
        assert (m.width, m.height, m.encoding, m.step) == (720, 405, encoding, 720 * 3)
        assert len(m.data) == 405 * 720 * 3
        img = np.frombuffer(bytes(m.data), np.uint8)
        assert img.std() > 5, "the enhanced image is not flat"
    assert sorted(stamp_ns(t.header) for t in telemetry) == stamps, "one telemetry per processed frame"
    for i, t in enumerate(sorted(telemetry, key=lambda t: stamp_ns(t.header))):
        assert t.header.frame_id == FRAME_ID
        assert t.node_name.endswith("/dehaze_node")
        assert (t.model_name, t.model_variant, t.timesteps) == ("snntrans_dhz", "official", 4)
        assert len(t.weights_id) == 12
        assert (t.input_width, t.input_height) == (720, 405)
        assert (t.model_width, t.model_height) == (720, 408), "padded to the model's multiple of 8"
        assert t.frames_processed == i + 1 and t.frames_dropped == 0
        assert 1.0 < t.inference_ms < 10_000
        assert t.end_to_end_ms >= t.inference_ms
        assert t.preprocess_ms >= 0 and t.postprocess_ms >= 0 and t.queue_wait_ms >= 0
        assert t.cpu_time_ms > 0
        assert t.ops_counted and t.synaptic_ops > 1e6 and t.analog_macs > 1e6
        expected_j = (t.e_ac_pj * t.synaptic_ops + t.e_mac_pj * t.analog_macs) * 1e-12
        assert t.energy_j == pytest.approx(expected_j, rel=1e-5)
        assert (t.e_ac_pj, t.e_mac_pj) == (pytest.approx(0.9), pytest.approx(4.6))
        assert 0.0 < t.mean_spike_rate < 1.0
        assert len(t.layer_names) == len(t.layer_spike_rates) > 0
        assert all(0.0 <= r <= 1.0 for r in t.layer_spike_rates)


def test_raw_rgb8_frames_each_give_one_enhanced_rgb8_image_and_one_telemetry(peer, node, outputs, frames):
    from sensor_msgs.msg import Image

    sent = [image_msg(f, (1000 + i) * 10**9 + 123, FRAME_ID) for i, f in enumerate(frames)]
    enhanced, telemetry = _lockstep(peer, node, outputs, sent, "image", Image)
    _check(sent, enhanced, telemetry, "rgb8")


def test_compressed_frames_after_switching_transport_the_lifecycle_way(peer, node, outputs, frames):
    from sensor_msgs.msg import CompressedImage

    assert peer.change_state(node.fqn, "deactivate")
    assert all(r.successful for r in peer.set_params(node.fqn, input_transport="compressed"))
    assert peer.change_state(node.fqn, "activate")
    try:
        sent = [compressed_msg(f, (2000 + i) * 10**9 + 7, FRAME_ID) for i, f in enumerate(frames)]
        enhanced, telemetry = _lockstep(peer, node, outputs, sent, "image/compressed", CompressedImage)
        _check(sent, enhanced, telemetry, "rgb8")
    finally:
        assert peer.change_state(node.fqn, "deactivate")
        peer.set_params(node.fqn, input_transport="raw")
        assert peer.change_state(node.fqn, "activate")


@pytest.mark.parametrize("encoding,expected", [("bgr8", "bgr8"), ("mono8", "mono8")])
def test_output_keeps_the_input_colour_family(peer, node, outputs, frames, encoding, expected):
    """BGR in → bgr8 out; a mono camera's frames come out mono (its luminance), not tinted RGB."""
    from sensor_msgs.msg import Image

    small = cv2.resize(frames[0], (128, 96))
    sent = [image_msg(small, (3000 + i) * 10**9, FRAME_ID, encoding) for i in range(2)]
    enhanced, _ = _lockstep(peer, node, outputs, sent, "image", Image)
    assert {m.encoding for m in enhanced} == {expected}
    assert {(m.width, m.height) for m in enhanced} == {(128, 96)}
    channels = 1 if expected == "mono8" else 3
    assert {(m.step, len(m.data)) for m in enhanced} == {(128 * channels, 128 * 96 * channels)}
    if encoding == "bgr8":  # a bgr8 output decoded as bgr8 is close to the rgb input's dehazed colours
        img = np.frombuffer(bytes(enhanced[0].data), np.uint8).reshape(96, 128, 3)[..., ::-1]
        assert np.corrcoef(img[..., 0].ravel(), small[..., 0].ravel())[0, 1] > 0.5


def test_strength_is_hot_and_zero_publishes_the_input(peer, node, outputs, frames):
    """``strength`` (0..1) blends the output with the input at the next frame; outside the range
    the set call is refused and the value kept."""
    from sensor_msgs.msg import Image

    small = cv2.resize(frames[0], (128, 96))
    assert not peer.set_params(node.fqn, strength=1.5)[0].successful
    assert peer.set_params(node.fqn, strength=0.0)[0].successful
    try:
        sent = [image_msg(small, 3500 * 10**9, FRAME_ID)]
        enhanced, _ = _lockstep(peer, node, outputs, sent, "image", Image)
        out = np.frombuffer(bytes(enhanced[0].data), np.uint8).reshape(96, 128, 3)
        assert np.array_equal(out, small)
    finally:
        assert peer.set_params(node.fqn, strength=1.0)[0].successful
    enhanced, _ = _lockstep(peer, node, outputs, [image_msg(small, 3501 * 10**9, FRAME_ID)], "image", Image)
    assert not np.array_equal(np.frombuffer(bytes(enhanced[0].data), np.uint8).reshape(96, 128, 3), small)


def test_grading_is_hot_and_global_publishes_the_input_graded_as_the_network_graded_it(
    peer, node, outputs, frames
):
    """``grading: global`` publishes the input through one colour matrix fitted to the network's
    output (the frame's own detail, the network's colours); another word is refused with the
    choices and the value kept."""
    from sensor_msgs.msg import Image

    from snn_perception.runtime.engine import Engine, EngineConfig
    from snn_perception.runtime.grading import global_grading

    small = cv2.resize(frames[0], (128, 96))
    result = peer.set_params(node.fqn, grading="sharp")[0]
    assert not result.successful and "pixels, global" in result.reason
    assert peer.set_params(node.fqn, grading="global")[0].successful
    try:
        sent = [image_msg(small, 3600 * 10**9, FRAME_ID)]
        enhanced, _ = _lockstep(peer, node, outputs, sent, "image", Image)
        out = np.frombuffer(bytes(enhanced[0].data), np.uint8).reshape(96, 128, 3).astype(np.float32)
    finally:
        assert peer.set_params(node.fqn, grading="pixels")[0].successful
    # the same frame through the engine in this process: the node's output is its global grading
    result = Engine.load(str(dhz_weights_or_skip()), EngineConfig(), task="dehaze").run(small)
    expected = global_grading(small, result.output, result.stats.model_hw) * 255.0
    assert np.abs(out - expected).mean() < 1.0  # the node's uint8 rounding
    assert np.abs(out - small.astype(np.float32)).mean() > 5.0  # graded, not the input


def test_the_contrast_grading_needs_weights_with_a_contrast_model_and_publishes_their_strength(
    peer, node, outputs, frames, tmp_path
):
    """``grading: contrast`` is refused (with the reason) while the loaded weights carry no contrast
    model; after ``~/load_model`` swaps in weights that do, it is accepted and the node publishes
    the global grading plus local contrast of the strength their model gives the frame."""
    from sensor_msgs.msg import Image
    from snn_perception.srv import LoadModel

    from snn_perception.offline.contrast_fit import save_with_contrast
    from snn_perception.runtime.contrast import FEATURES, ContrastModel, local_contrast
    from snn_perception.runtime.engine import Engine, EngineConfig
    from snn_perception.runtime.grading import global_grading

    n = len(FEATURES)
    model = ContrastModel(clip=1.5, mean=(0.0,) * n, std=(1.0,) * n, coef=(0.0,) * n, intercept=0.8)
    with_model = save_with_contrast("dhz_v2", model, tmp_path / "dhz_v2_contrast.safetensors")
    original = peer.get_params(node.fqn, "weights")[0]

    def load(weights: str) -> None:
        req = LoadModel.Request(weights=weights, timesteps=0)
        resp = peer.call(LoadModel, f"{node.fqn}/load_model", req, timeout=120)
        assert resp.success, resp.message

    small = cv2.resize(frames[0], (128, 96))
    try:
        load("dhz_v2")
        result = peer.set_params(node.fqn, grading="contrast")[0]
        assert not result.successful and "carry no contrast model" in result.reason, result.reason
        load(str(with_model))
        assert peer.set_params(node.fqn, grading="contrast")[0].successful
        sent = [image_msg(small, 3700 * 10**9, FRAME_ID)]
        enhanced, _ = _lockstep(peer, node, outputs, sent, "image", Image)
        out = np.frombuffer(bytes(enhanced[0].data), np.uint8).reshape(96, 128, 3).astype(np.float32)
    finally:
        assert peer.set_params(node.fqn, grading="pixels")[0].successful
        load(original)
    result = Engine.load(str(with_model), EngineConfig(), task="dehaze").run(small)
    graded = global_grading(small, result.output, result.stats.model_hw)
    expected, alpha = local_contrast(small, graded, model, result.stats.model_hw)
    assert alpha == pytest.approx(0.8)
    assert np.abs(out - expected * 255.0).mean() < 1.0  # the node's uint8 rounding
    assert np.abs(out - graded * 255.0).mean() > 2.0  # the contrast step did something


def test_a_30hz_stream_keeps_inference_steady_and_the_spin_thread_idle(peer, node, outputs, frames):
    """Frames faster than the node runs (it drops the surplus): inference time stays steady and
    the executor's spin thread does not busy-loop (rclpy's MultiThreadedExecutor did, starving the
    inference worker of the GIL: 80 ms frames took seconds).

    What it assumes: nothing about the machine's speed. It streams at 30 Hz until 55 frames have
    come out after 5 of warm-up (at most 90 s: 1.4 s per frame would still pass), and compares the
    node with itself: the slowest frame within 3× the median + 100 ms, and the spin thread under
    25 % of a core. A starved worker shows as a max far above the median; a busy-looping executor as
    a spin thread near 100 %. Absolute figures for a quiet machine are in ``tools/node_bench.py``.
    """
    from sensor_msgs.msg import Image

    if not os.path.isdir(f"/proc/{node.proc.pid}/task"):
        pytest.skip("needs /proc to read the node's thread CPU time")
    tel = outputs[1]
    pub = peer.publisher(Image, f"{node.fqn}/image")
    wait_for(lambda: pub.get_subscription_count() > 0, 30, "the node to subscribe")
    small = [cv2.resize(f, (256, 256)) for f in frames[:5]]
    pid = node.proc.pid  # the main thread spins the executor: its thread id is the process id
    tel.clear()
    cpu0 = t0 = None
    start, i = time.monotonic(), 0
    while len(tel) < 60 and time.monotonic() - start < 90:
        if cpu0 is None and len(tel) >= 5:  # after warm-up
            cpu0, t0 = thread_cpu_s(pid, pid), time.monotonic()
        pub.publish(image_msg(small[i % 5], (4000 + i) * 10**9, FRAME_ID))
        i += 1
        time.sleep(1 / 30)
    assert cpu0 is not None, f"fewer than 5 outputs in 90 s\n{node.log()}"
    spin_share = (thread_cpu_s(pid, pid) - cpu0) / (time.monotonic() - t0)
    inf = np.array([t.inference_ms for t in tel.snapshot()][5:])
    print(
        f"30 Hz 256x256: {i} frames sent in {time.monotonic() - start:.1f} s, {len(inf) + 5} outputs, "
        f"inference median {np.median(inf):.0f} ms, p95 {np.percentile(inf, 95):.0f} ms, "
        f"max {inf.max():.0f} ms; spin thread CPU {spin_share:.0%}"
    )
    assert len(inf) >= 20, f"only {len(inf) + 5} outputs in 90 s"
    assert inf.max() <= 3 * np.median(inf) + 100, "inference stalled while frames arrived"
    assert spin_share < 0.25, f"the executor's spin thread used {spin_share:.0%} of a core"


def _median_arrival_to_output(pub, tel, frames, timesteps: int, first_stamp: int) -> float:
    """Median arrival→output time of six well-spaced frames at ``timesteps`` (0 = the default)."""
    tel.clear()
    for i in range(6):
        pub.publish(image_msg(frames[i % len(frames)], (first_stamp + i) * 10**9, FRAME_ID))
        time.sleep(0.3)
    wait_for(lambda: len(tel) >= 5, 30, f"outputs at T={timesteps or 'default'}")
    rows = sorted(tel.snapshot(), key=lambda t: stamp_ns(t.header))
    return float(np.median([t.arrival_to_output_ms for t in rows[1:]]))


def _burners(n: int) -> list[subprocess.Popen]:
    """``n`` CPU-bound processes: the load another program on the robot's computer would add."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def test_a_latency_budget_set_while_active_adapts_t_to_the_load(peer, node, outputs, frames):
    """A stream of 128² frames (10 Hz, slower where need be) with ``latency_budget_ms`` set while the
    node is active: telemetry reports the T used, the budget and misses; when busy processes take
    every core halfway through, T falls; fewer than 5 % of frames miss the budget (arrival to published
    outputs). The budget is 1.5 × the node's T = 4 frame measured first: T = 4 fits while the machine
    is idle (the planner keeps a 10 % margin, the rest absorbs jitter) and not once the busy
    processes slow the node by 1.4× or more (measured: about 2×, then T = 1 at 30 ms of a 52 ms
    budget). It must stay under 90 % of the frame period so frames do not queue: where T = 4 is too
    slow for 10 Hz (a slow machine, or the other test worker busy) frames come slower, as a camera's
    rate is chosen for its computer; the test skips only below 4 Hz.

    The < 5 % miss rate is a timing claim for an otherwise idle 2-core machine: it is asserted with
    SNN_RUN_SLOW=1 in one test process (``make test-all``); elsewhere it is printed, and what must
    hold on a shared machine is asserted: the telemetry fields, T lower under the added load than
    before it, and misses flagged exactly when a frame's arrival-to-output time exceeded the budget."""
    from sensor_msgs.msg import Image

    _, tel = outputs
    pub = peer.publisher(Image, f"{node.fqn}/image")
    wait_for(lambda: pub.get_subscription_count() > 0, 30, "the node to subscribe")
    small = [cv2.resize(f, (128, 128)) for f in frames[:5]]
    assert all(r.successful for r in peer.set_params(node.fqn, timesteps=1))
    t1_ms = _median_arrival_to_output(pub, tel, small, 1, 5000)
    assert all(r.successful for r in peer.set_params(node.fqn, timesteps=0))
    t4_ms = _median_arrival_to_output(pub, tel, small, 0, 5100)
    budget = 1.5 * t4_ms
    period = max(0.1, math.ceil(budget / 0.9 / 10) / 100)  # s, in 10 ms steps
    if period > 0.25:
        pytest.skip(f"128² frames take {t4_ms:.0f} ms at T=4 here: too slow for a 4 Hz budget test")
    assert all(r.successful for r in peer.set_params(node.fqn, latency_budget_ms=budget))
    burners: list[subprocess.Popen] = []
    try:
        tel.clear()
        for i in range(100):  # 10 s at 10 Hz, at most 25 s
            if i == 50:
                burners = _burners(os.cpu_count() or 2)
            pub.publish(image_msg(small[i % 5], (6000 + i) * 10**9, FRAME_ID))
            time.sleep(period)
        for b in burners:
            b.kill()
        time.sleep(2.0)
        rows = sorted(tel.snapshot(), key=lambda t: stamp_ns(t.header))
    finally:
        for b in burners:
            b.kill()
            b.wait(5)
        peer.set_params(node.fqn, latency_budget_ms=0.0)
        peer.node.destroy_publisher(pub)
    assert len(rows) >= 30, f"only {len(rows)} outputs"
    assert all(t.latency_budget_ms == pytest.approx(budget) for t in rows)
    assert all(1 <= t.timesteps <= t.max_timesteps == 4 for t in rows)
    idle = [t.timesteps for t in rows if 6002 <= stamp_ns(t.header) // 10**9 < 6050]  # after 2 to settle
    loaded = [t.timesteps for t in rows if stamp_ns(t.header) // 10**9 >= 6055]  # the load has started
    detail = [(t.timesteps, round(t.arrival_to_output_ms)) for t in rows]
    assert idle and loaded, detail
    assert np.mean(loaded) < np.mean(idle), f"T did not fall under load: (T, ms) {detail}"
    settled = rows[2:]  # the first frames of a budget measure the model at T = 1
    missed = sum(t.budget_missed for t in settled) / len(settled)
    print(
        f"budget {budget:.0f} ms (T=1 {t1_ms:.0f} ms, T=4 {t4_ms:.0f} ms) at {1 / period:.1f} Hz: "
        f"mean T idle {np.mean(idle):.2f}, "
        f"loaded {np.mean(loaded):.2f}; miss rate {missed:.1%}, (T, ms) {detail}"
    )
    clear = [t for t in rows if abs(t.arrival_to_output_ms - budget) > 0.01]  # float32 in the message
    assert all(t.budget_missed == (t.arrival_to_output_ms > budget) for t in clear)
    if os.environ.get("SNN_RUN_SLOW") == "1" and xdist_workers() == 1:  # no other test worker beside it
        assert missed < 0.05, f"miss rate {missed:.1%}: (T, ms) {detail}"
