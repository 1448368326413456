"""ROS tests: skip cleanly without rclpy or the built interfaces; isolate each module."""

from __future__ import annotations

import os
import random

import pytest
from rosproc import ros_env

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (pip install '.[ros]' or source ROS 2)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/test/ros/" in str(item.fspath):
            item.add_marker(pytest.mark.ros)


@pytest.fixture(scope="module")
def ros_environment() -> dict[str, str]:
    """Environment for node processes: loopback only, our Fast DDS profile, own domain."""
    try:
        import snn_perception.msg  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"snn_perception interfaces are not built ({exc}); run `make test` or colcon build")
    return ros_env(domain_id=random.Random(os.getpid() ^ id(object())).randint(1, 100))


@pytest.fixture(scope="module")
def peer(ros_environment):
    """An in-test rclpy peer on the module's domain (lifecycle/parameter clients, collectors)."""
    from nodeproc import Peer

    p = Peer(int(ros_environment["ROS_DOMAIN_ID"]))
    yield p
    p.close()
