"""Must show 5 (fuzz) and 6 (overhead) against a dehaze_node in its own process.

Fuzz: a fixed corpus of malformed Image/CompressedImage messages, each followed by a good frame;
the node stays active, answers every good frame, and counts every bad one as dropped.
Overhead: on 256×256 frames, stamp → output received minus the model's own inference time.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from nodeproc import (
    compressed_msg,
    dhz_weights_or_skip,
    diagnostics_of,
    image_msg,
    running_node,
    stamp_ns,
    wait_for,
)

NAMESPACE = f"/rb{os.getpid()}"
FQN = f"{NAMESPACE}/dehaze_node"
MAX_PIXELS = 1_000_000


def _rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _raw(encoding="rgb8", h=16, w=16, step=None, data=None, bigendian=0):
    from sensor_msgs.msg import Image

    m = Image()
    m.header.frame_id = "fuzz"
    m.encoding, m.height, m.width, m.is_bigendian = encoding, h, w, bigendian
    m.step = 3 * w if step is None else step
    m.data = bytes(3 * w * h) if data is None else data
    return m


def _comp(fmt, data):
    from sensor_msgs.msg import CompressedImage

    m = CompressedImage()
    m.header.frame_id = "fuzz"
    m.format, m.data = fmt, data
    return m


def malformed_corpus() -> list[tuple[str, object, str]]:
    """(label, message, the words its refusal names) — 60 cases."""
    from snn_perception.runtime.image_codec import encode_compressed

    jpeg = encode_compressed(_rgb(48, 64, 1), "jpeg")
    png = encode_compressed(_rgb(48, 64, 1), "png")
    nan = np.full((4, 4), np.nan, np.float32).tobytes()
    inf = np.array([[np.inf] * 4] * 4, np.float32).tobytes()
    cases: list[tuple[str, object, str]] = [
        ("zero height", _raw(h=0), "zero-size"),
        ("zero width", _raw(w=0), "zero-size"),
        ("zero both", _raw(h=0, w=0, data=b""), "zero-size"),
        ("zero mono8", _raw("mono8", h=0, step=16), "zero-size"),
        ("empty data", _raw(data=b""), "fewer than step"),
        ("data one byte short", _raw(data=bytes(16 * 48 - 1)), "fewer than step"),
        ("data half", _raw(data=bytes(16 * 24)), "fewer than step"),
        ("height too large for data", _raw(h=17, data=bytes(16 * 48)), "fewer than step"),
        ("step larger than data allows", _raw(step=60, data=bytes(16 * 48)), "fewer than step"),
        ("step too small", _raw(step=47), "smaller than width"),
        ("step zero", _raw(step=0), "smaller than width"),
        ("mono16 step too small", _raw("mono16", step=16, data=bytes(512)), "smaller than width"),
        ("rgba8 with rgb8 step", _raw("rgba8", step=48, data=bytes(1024)), "smaller than width"),
        ("32FC1 NaN", _raw("32FC1", h=4, w=4, step=16, data=nan), "NaN/inf"),
        ("32FC1 inf", _raw("32FC1", h=4, w=4, step=16, data=inf), "NaN/inf"),
        (
            "32FC1 big-endian NaN",
            _raw("32FC1", h=1, w=1, step=4, data=b"\x7f\xc0\x00\x00", bigendian=1),
            "NaN/inf",
        ),
        ("yuv422 odd width", _raw("yuv422", w=15, step=30, data=bytes(480)), "even"),
        ("yuy2 odd width", _raw("yuv422_yuy2", w=15, step=30, data=bytes(480)), "even"),
        (
            "over max pixels (real data)",
            _raw(h=1000, w=1001, data=bytes(3 * 1001 * 1000)),
            "max_input_pixels",
        ),
        ("absurd header", _raw(h=100_000, w=100_000, step=300_000, data=b""), "max_input_pixels"),
    ]
    for enc in ("", "RGB8", "rgb16", "nv12", "jpeg", "64FC1", "bayer_xyzw8", "8SC3", "mono8 ", "h264"):
        cases.append((f"unknown encoding {enc!r}", _raw(enc), "unknown encoding"))
    cases += [
        ("compressed empty", _comp("jpeg", b""), "empty"),
        ("compressed zeros", _comp("jpeg", bytes(100)), "neither JPEG nor PNG"),
        ("compressed gif", _comp("jpeg", b"GIF89a" + bytes(40)), "neither JPEG nor PNG"),
        ("compressed text", _comp("png", b"hello world" * 10), "neither JPEG nor PNG"),
        ("jpeg SOI only", _comp("jpeg", b"\xff\xd8"), "neither JPEG nor PNG"),
        ("jpeg SOI+EOI", _comp("jpeg", b"\xff\xd8\xff\xd9"), "corrupt JPEG"),
        ("jpeg header only", _comp("jpeg", jpeg[:30]), "corrupt JPEG"),
        (
            "jpeg scan before frame",
            _comp("jpeg", b"\xff\xd8\xff\xda\x00\x08" + bytes(20) + b"\xff\xd9"),
            "corrupt",
        ),
        (
            "jpeg zero-size frame",
            _comp("jpeg", jpeg[:2] + b"\xff\xc0\x00\x11\x08\x00\x00\x00\x00" + jpeg[2:]),
            "zero-size",
        ),
        (
            "jpeg bad marker",
            _comp("jpeg", b"\xff\xd8\xff\xe0\x00\x10" + bytes(14) + b"\x12\x34" + jpeg[20:]),
            "expected a marker",
        ),
        ("png signature only", _comp("png", png[:8]), "corrupt PNG"),
        ("png header only", _comp("png", png[:33]), "truncated"),
        ("png zero width", _comp("png", png[:16] + bytes(4) + png[20:]), "zero-size"),
        (
            "png huge",
            _comp("png", png[:16] + b"\x00\x01\x00\x00\x00\x01\x00\x00" + png[24:]),
            "max_input_pixels",
        ),
        ("png bad IHDR", _comp("png", png[:12] + b"XXXX" + png[16:]), "corrupt PNG"),
        ("png garbled data", _comp("png", png[:40] + bytes(60) + png[100:]), "corrupt PNG"),
        ("format png, data jpeg", _comp("png", jpeg), "does not match"),
        ("format jpeg, data png", _comp("jpeg", png), "does not match"),
        ("format tiff", _comp("tiff", png), "does not match"),
        ("compressedDepth", _comp("16UC1; compressedDepth png", png), "compressedDepth"),
    ]
    for k, cut in enumerate((0.1, 0.25, 0.5, 0.75, 0.9, 0.98)):
        cases.append((f"jpeg truncated {k}", _comp("jpeg", jpeg[: int(len(jpeg) * cut)]), "corrupt JPEG"))
    for k, cut in enumerate((0.3, 0.6, 0.9)):
        cases.append((f"png truncated {k}", _comp("png", png[: int(len(png) * cut)]), "PNG"))
    return cases


@pytest.fixture(scope="module")
def topics(peer):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CompressedImage, Image
    from snn_perception.msg import EnergyTelemetry

    return {
        "out": peer.collect(Image, f"{FQN}/enhanced"),
        "tel": peer.collect(EnergyTelemetry, f"{FQN}/telemetry"),
        "diag": peer.collect(DiagnosticArray, "/diagnostics", depth=20),
        "raw": peer.publisher(Image, f"{FQN}/image", depth=10),
        "compressed": peer.publisher(CompressedImage, f"{FQN}/image/compressed", depth=10),
    }


@pytest.fixture(scope="module")
def node(ros_environment, peer, topics, tmp_path_factory):
    params = {
        "weights": str(dhz_weights_or_skip()),
        "device": "cpu",
        "max_input_pixels": MAX_PIXELS,
        "count_ops": False,
    }
    ready = (lambda: topics["raw"].get_subscription_count() > 0, "the node to subscribe ~/image")
    logs = tmp_path_factory.mktemp("robust_logs")
    with running_node(
        peer, "snn_perception.ros.dehaze_node", NAMESPACE, params, ros_environment, logs, ready=ready
    ) as proc:
        yield proc


def _good_frame(topics, stamp: int, timeout: float = 30.0):
    topics["raw"].publish(image_msg(_rgb(96, 128, stamp % 11), stamp, "good"))
    wait_for(lambda: stamp in topics["tel"].stamps(), timeout, f"the output of good frame {stamp}")


def test_corpus_has_at_least_fifty_cases_each_refused_by_the_codec():
    from snn_perception.runtime.image_codec import ImageDecodeError, decode_compressed, decode_image

    cases = malformed_corpus()
    assert len(cases) >= 50
    for label, msg, words in cases:
        with pytest.raises(ImageDecodeError, match=words):
            if hasattr(msg, "encoding"):
                decode_image(
                    msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data, MAX_PIXELS
                )
            else:
                decode_compressed(msg.format, msg.data, MAX_PIXELS)
        assert label


def test_malformed_messages_never_stop_the_node_from_serving_good_frames(peer, node, topics):
    cases = malformed_corpus()
    good = 0
    # the node listens on the raw topic; compressed cases go through a transport switch below
    raw_cases = [c for c in cases if hasattr(c[1], "encoding")]
    comp_cases = [c for c in cases if not hasattr(c[1], "encoding")]
    for i, (_label, msg, _) in enumerate(raw_cases):
        msg.header.stamp.sec = 500 + i
        topics["raw"].publish(msg)
        time.sleep(0.15)  # let the idle worker take it, so it is decoded rather than overwritten
        _good_frame(topics, (600 + i) * 10**9)
        good += 1
    last = max(topics["tel"].snapshot(), key=lambda t: t.frames_processed)
    assert last.frames_processed == good
    assert last.frames_dropped == len(raw_cases), "every malformed frame is counted as dropped"
    assert peer.get_state(FQN) == "active"
    wait_for(
        lambda: diagnostics_of(topics["diag"], FQN).get("frames processed") == str(good), 5, "diagnostics"
    )
    diag = diagnostics_of(topics["diag"], FQN)
    # every malformed frame is accounted for; nearly all reached the decoder (a few may be overwritten
    # by the next good frame when the machine is busy, which is a drop too, counted as such)
    accounted = sum(
        int(diag[k]) for k in ("frames rejected", "frames overwritten", "frames lost in transport")
    )
    assert accounted == len(raw_cases), diag
    assert int(diag["frames rejected"]) >= 0.9 * len(raw_cases), diag
    assert diag["last error"], "the last problem is shown in diagnostics"
    assert "frame dropped:" in node.log(), "a (throttled) error names the problem in the log"

    assert peer.change_state(FQN, "deactivate")
    assert all(r.successful for r in peer.set_params(FQN, input_transport="compressed"))
    assert peer.change_state(FQN, "activate")
    wait_for(lambda: topics["compressed"].get_subscription_count() > 0, 30, "the compressed subscription")
    topics["tel"].clear()
    for i, (label, msg, _) in enumerate(comp_cases):
        msg.header.stamp.sec = 700 + i
        topics["compressed"].publish(msg)
        time.sleep(0.1)
        stamp = (800 + i) * 10**9
        topics["compressed"].publish(compressed_msg(_rgb(96, 128, i), stamp, "good"))
        wait_for(lambda s=stamp: s in topics["tel"].stamps(), 30, f"good compressed frame after {label!r}")
    last = max(topics["tel"].snapshot(), key=lambda t: t.frames_processed)
    assert (last.frames_processed, last.frames_dropped) == (len(comp_cases), len(comp_cases))
    wait_for(
        lambda: diagnostics_of(topics["diag"], FQN).get("frames processed") == str(len(comp_cases)),
        5,
        "diagnostics after the compressed corpus",
    )
    diag = diagnostics_of(topics["diag"], FQN)
    accounted = sum(
        int(diag[k]) for k in ("frames rejected", "frames overwritten", "frames lost in transport")
    )
    assert accounted == len(comp_cases), diag
    assert int(diag["frames rejected"]) >= 0.9 * len(comp_cases), diag
    assert peer.get_state(FQN) == "active"
    assert node.alive()
    assert peer.change_state(FQN, "deactivate")
    peer.set_params(FQN, input_transport="raw")
    assert peer.change_state(FQN, "activate")
    wait_for(lambda: topics["raw"].get_subscription_count() > 0, 30, "the raw subscription again")


def test_two_publishers_on_one_topic_lose_nothing(peer, node, topics):
    """Sequence numbers count per publisher: a camera and a bag replay may share a topic."""
    from sensor_msgs.msg import Image

    second = peer.publisher(Image, f"{FQN}/image", depth=10)
    try:
        wait_for(lambda: second.get_subscription_count() > 0, 30, "the node to match the second publisher")
        for i in range(5):  # the first publisher's numbers run ahead of the new one's
            _good_frame(topics, (1090 + i) * 10**9)
        dropped = max(topics["tel"].snapshot(), key=lambda t: t.frames_processed).frames_dropped
        for i in range(8):  # alternate: numbers go 1, 2, … on one and keep climbing on the other
            stamp = (1101 + i) * 10**9
            (second if i % 2 == 0 else topics["raw"]).publish(image_msg(_rgb(48, 64, i), stamp, "two"))
            wait_for(lambda s=stamp: s in topics["tel"].stamps(), 30, f"the output of frame {stamp}")
        last = max(topics["tel"].snapshot(), key=lambda t: t.frames_processed)
        assert last.frames_dropped == dropped, "no frame was lost, none may be counted as lost"
    finally:
        peer.node.destroy_publisher(second)


def test_a_stamp_from_the_future_gives_latency_from_reception(peer, node, topics):
    stamp = time.time_ns() + 5 * 10**9  # the camera's clock runs 5 s ahead of ours
    topics["raw"].publish(image_msg(_rgb(48, 64, 3), stamp, "skewed"))
    wait_for(lambda: stamp in topics["tel"].stamps(), 30, "the output of the skewed frame")
    tel = next(t for t in topics["tel"].snapshot() if stamp_ns(t.header) == stamp)
    assert 0.0 <= tel.end_to_end_ms < 5000.0, tel.end_to_end_ms
    wait_for(lambda: "in this node's future" in node.log(), 10, "a warning about the clocks")


def test_overhead_on_256x256_is_at_most_10_ms_or_15_percent_beyond_inference(peer, node, topics):
    """End-to-end (header stamp → output received here) minus the node's reported inference time.

    Assumptions: the overhead (decode, resize, encode, two loopback transfers of 192 KiB) is CPU
    work that slows with the host as inference does, so its budget is 10 ms or 15 % of the median
    inference time, whichever is larger: 10 ms holds on an idle 2-core host (7–9 ms measured with
    ~90 ms inference), and a host slowed by other work (stages measured 1.4–3× slower on a shared
    VM, 13.7 ms once) also slows inference, which raises the budget with it. A copy or a
    serialisation step added to the path (tens of ms) still fails it.
    """
    topics["out"].clear()
    topics["tel"].clear()
    frame = _rgb(256, 256, 5)
    for i in range(3):  # warm the path
        _good_frame(topics, (900 + i) * 10**9)
    topics["out"].clear()
    topics["tel"].clear()
    for _ in range(30):
        stamp = time.time_ns()
        topics["raw"].publish(image_msg(frame, stamp, "timing"))
        wait_for(
            lambda s=stamp: s in topics["out"].stamps() and s in topics["tel"].stamps(), 30, "timed frame"
        )
    with topics["out"].lock:
        arrivals = {
            stamp_ns(m.header): w for m, w in zip(topics["out"].msgs, topics["out"].wall_ns, strict=True)
        }
    tels = topics["tel"].snapshot()
    inference = {stamp_ns(t.header): t.inference_ms for t in tels}
    for field in ("queue_wait_ms", "preprocess_ms", "postprocess_ms", "end_to_end_ms"):
        print(field, f"{np.median([getattr(t, field) for t in tels]):.2f}")
    e2e = np.array([(arrivals[s] - s) / 1e6 for s in inference])
    inf = np.array([inference[s] for s in inference])
    overhead = e2e - inf
    print(
        f"\n256x256 T=4: end-to-end median {np.median(e2e):.1f} ms, "
        f"inference median {np.median(inf):.1f} ms, "
        f"overhead median {np.median(overhead):.1f} ms (p90 {np.percentile(overhead, 90):.1f} ms)"
    )
    assert len(e2e) == 30
    budget = max(10.0, 0.15 * float(np.median(inf)))
    assert np.median(overhead) <= budget, f"overhead {np.median(overhead):.1f} ms > budget {budget:.1f} ms"
