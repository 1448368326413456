"""Which topic a replay feeds a running node: the one it reads, unless another target feeds it."""

from __future__ import annotations

import pytest

from snn_perception.ros.node_inputs import InputError, choose, split_name

RAW, COMPRESSED = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"


def test_a_chain_feeds_the_first_node_only_and_an_idle_node_is_told_apart():
    subs = {
        "dehaze": {
            "/rov/camera/image_raw": [RAW],
            "/parameter_events": ["rcl_interfaces/msg/ParameterEvent"],
        },
        "segment": {"/rov/dehaze_node/enhanced": [RAW]},
    }
    pubs = {"dehaze": {"/rov/dehaze_node/enhanced", "/rov/dehaze_node/telemetry"}, "segment": set()}
    assert choose(subs, pubs, compressed=False) == {"dehaze": "/rov/camera/image_raw", "segment": None}
    # segment_input:=camera: both read the camera, both are fed
    subs["segment"] = {"/rov/camera/image_raw": [RAW]}
    assert choose(subs, pubs, compressed=False) == {
        "dehaze": "/rov/camera/image_raw",
        "segment": "/rov/camera/image_raw",
    }
    assert choose({"dehaze": {}}, {"dehaze": set()}, compressed=False) == {"dehaze": ""}, "not active yet"


def test_a_transport_mismatch_says_what_to_change():
    subs = {"dehaze": {"/cam/image_raw/compressed": [COMPRESSED]}}
    with pytest.raises(
        InputError,
        match=r"frames are raw .* /rov/dehaze_node reads .*CompressedImage on "
        r"/cam/image_raw/compressed; replay a compressed image topic \(--topic\)",
    ):
        choose(subs, {"dehaze": set()}, compressed=False, names={"dehaze": "/rov/dehaze_node"})
    assert choose(subs, {"dehaze": set()}, compressed=True) == {"dehaze": "/cam/image_raw/compressed"}


def test_split_name():
    assert split_name("/rov/front/dehaze_node") == ("dehaze_node", "/rov/front")
    assert split_name("/dehaze_node") == ("dehaze_node", "/")
