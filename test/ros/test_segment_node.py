"""Must show 1 (segment): 30 real underwater frames, raw and compressed, through a segment_node in
its own process: masks keep the stamp and frame_id, are mono8 at the input size and hold only valid
class ids; colour mask and overlay are rgb8; one telemetry per processed frame.

Runs with ``$SNN_SEGMENT_WEIGHTS`` or the shipped default segment model; without either, with an
untrained (seeded random) Spiking-UNet: the node's plumbing is the same, only the masks mean nothing.
The model runs at 320×184 (``input_width``/``input_height``) to keep the CPU time small; outputs are
still at the input size.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from nodeproc import (
    compressed_msg,
    image_msg,
    lsui_frames,
    running_node,
    segment_weights,
    stamp_ns,
    untrained_spiking_unet,
    wait_for,
)

N_FRAMES = 30
FRAME_ID = "rov/camera_optical"
NAMESPACE = f"/sg{os.getpid()}"
FQN = f"{NAMESPACE}/segment_node"


@pytest.fixture(scope="module")
def frames():
    out = lsui_frames(N_FRAMES)
    if not out:
        pytest.skip(f"needs {N_FRAMES} 720x405 LSUI frames in ../shared/data/lsui_pairs/raw")
    return out


@pytest.fixture(scope="module")
def outputs(peer):
    from sensor_msgs.msg import Image
    from snn_perception.msg import EnergyTelemetry

    return {
        "mask": peer.collect(Image, f"{FQN}/mask"),
        "mask_color": peer.collect(Image, f"{FQN}/mask_color"),
        "overlay": peer.collect(Image, f"{FQN}/overlay"),
        "tel": peer.collect(EnergyTelemetry, f"{FQN}/telemetry"),
    }


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    return segment_weights() or untrained_spiking_unet(
        tmp_path_factory.mktemp("seg") / "untrained.safetensors"
    )


@pytest.fixture(scope="module")
def node(ros_environment, peer, outputs, weights, tmp_path_factory):
    params = {"weights": weights, "device": "cpu", "count_ops": True, "overlay_alpha": 0.4}
    params.update(input_width=320, input_height=184)
    logs = tmp_path_factory.mktemp("segment_logs")
    module = "snn_perception.ros.segment_node"
    with running_node(peer, module, NAMESPACE, params, ros_environment, logs) as proc:
        yield proc


def _run(peer, node, outputs, msgs, topic, msg_type):
    for col in outputs.values():
        col.clear()
    pub = peer.publisher(msg_type, f"{FQN}/{topic}")
    try:
        wait_for(lambda: pub.get_subscription_count() > 0, 30, f"{FQN} to subscribe {topic}")
        time.sleep(0.5)  # matched on our side; give the node's reader a moment to match us too
        for m in msgs:
            pub.publish(m)
            s = stamp_ns(m.header)
            try:
                wait_for(lambda s=s: all(s in c.stamps() for c in outputs.values()), 60, f"outputs of {s}")
            except TimeoutError as exc:
                have = {k: s in c.stamps() for k, c in outputs.items()}
                raise AssertionError(f"{exc} (arrived: {have})\n{node.log()}") from None
    finally:
        peer.node.destroy_publisher(pub)


def _check(sent, outputs, weights):
    stamps = sorted(stamp_ns(m.header) for m in sent)
    tels = outputs["tel"].snapshot()
    num_classes = None
    for t in tels:
        assert t.node_name.endswith("/segment_node") and t.header.frame_id == FRAME_ID
        assert (t.input_width, t.input_height) == (720, 405)
        assert 320 <= t.model_width < 336 and 184 <= t.model_height < 200, "runs at input_width×input_height"
        assert t.inference_ms > 0 and t.end_to_end_ms >= t.inference_ms
        assert t.frames_dropped == 0
    assert sorted(stamp_ns(t.header) for t in tels) == stamps
    assert sorted(t.frames_processed for t in tels) == list(range(1, len(sent) + 1))
    from snn_perception.runtime.checkpoint import load_checkpoint

    meta = load_checkpoint(weights).metadata
    num_classes = int(meta.get("num_classes", len(meta.get("class_names", ()))))
    assert num_classes >= 2
    for kind, enc, channels in (("mask", "mono8", 1), ("mask_color", "rgb8", 3), ("overlay", "rgb8", 3)):
        msgs = outputs[kind].snapshot()
        assert sorted(stamp_ns(m.header) for m in msgs) == stamps, kind
        for m in msgs:
            assert m.header.frame_id == FRAME_ID
            assert (m.width, m.height, m.encoding, m.step) == (720, 405, enc, 720 * channels), kind
            assert len(m.data) == 720 * 405 * channels
    ids = np.concatenate([np.frombuffer(bytes(m.data), np.uint8) for m in outputs["mask"].snapshot()])
    assert ids.max() < num_classes, "mask holds an id that is not a class"
    # the colour mask is the palette applied to the mask
    m0 = outputs["mask"].snapshot()[0]
    c0 = next(c for c in outputs["mask_color"].snapshot() if stamp_ns(c.header) == stamp_ns(m0.header))
    ids0 = np.frombuffer(bytes(m0.data), np.uint8).reshape(405, 720)
    col0 = np.frombuffer(bytes(c0.data), np.uint8).reshape(405, 720, 3)
    for k in np.unique(ids0):
        assert len(np.unique(col0[ids0 == k], axis=0)) == 1, f"class {k} has one colour"


def test_raw_frames_give_masks_colour_masks_overlays_and_telemetry(peer, node, outputs, frames, weights):
    from sensor_msgs.msg import Image

    sent = [image_msg(f, (1000 + i) * 10**9 + 5, FRAME_ID) for i, f in enumerate(frames)]
    _run(peer, node, outputs, sent, "image", Image)
    _check(sent, outputs, weights)


def test_compressed_frames_give_the_same_outputs(peer, node, outputs, frames, weights):
    from sensor_msgs.msg import CompressedImage

    assert peer.change_state(FQN, "deactivate")
    assert all(r.successful for r in peer.set_params(FQN, input_transport="compressed"))
    assert peer.change_state(FQN, "activate")
    sent = [compressed_msg(f, (2000 + i) * 10**9 + 9, FRAME_ID) for i, f in enumerate(frames)]
    _run(peer, node, outputs, sent, "image/compressed", CompressedImage)
    _check(sent, outputs, weights)


def test_every_parameter_can_be_read_at_once(peer, node):
    # what rqt_reconfigure and `ros2 param dump` do: list, then get every name in one request
    from rcl_interfaces.srv import GetParameters, ListParameters

    names = peer.call(ListParameters, f"{FQN}/list_parameters", ListParameters.Request()).result.names
    assert "class_colors" in names and len(names) > 10
    values = peer.call(GetParameters, f"{FQN}/get_parameters", GetParameters.Request(names=names)).values
    assert len(values) == len(names), "a parameter without a value empties the whole reply"
    assert peer.get_params(FQN, "class_colors") == [[]], "empty: the weights' colours"


def test_class_colors_and_overlay_alpha_are_hot(peer, node, outputs, frames, weights):
    from snn_perception.runtime.checkpoint import load_checkpoint

    n = int(load_checkpoint(weights).metadata.get("num_classes", 8))
    bad = peer.set_params(FQN, class_colors=["#zzzzzz"])[0]
    assert not bad.successful and "#RRGGBB" in bad.reason
    before = peer.get_params(FQN, "class_colors")
    too_many = peer.set_params(FQN, class_colors=["#102030"] * (n + 1))[0]
    assert not too_many.successful and f"{n + 1} colours for a model with {n} classes" in too_many.reason
    assert peer.get_params(FQN, "class_colors") == before, "the refused value was not kept"
    assert peer.set_params(FQN, class_colors=["#102030"] * n)[0].successful
    assert not peer.set_params(FQN, overlay_alpha=1.5)[0].successful
    assert peer.set_params(FQN, overlay_alpha=1.0)[0].successful
    from sensor_msgs.msg import CompressedImage

    sent = [compressed_msg(frames[0], 3000 * 10**9, FRAME_ID)]
    _run(peer, node, outputs, sent, "image/compressed", CompressedImage)
    col = np.frombuffer(bytes(outputs["mask_color"].snapshot()[0].data), np.uint8).reshape(-1, 3)
    ovl = np.frombuffer(bytes(outputs["overlay"].snapshot()[0].data), np.uint8).reshape(-1, 3)
    assert (col == [16, 32, 48]).all() and (ovl == [16, 32, 48]).all()
