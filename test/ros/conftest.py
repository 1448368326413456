"""ROS tests: skip cleanly without rclpy or the built interfaces; isolate each module."""

from __future__ import annotations

import pytest
from rosproc import module_domain_id, ros_env

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
    return ros_env(domain_id=module_domain_id())


@pytest.fixture(scope="module")
def peer(ros_environment):
    """An in-test rclpy peer on the module's domain (lifecycle/parameter clients, collectors)."""
    from nodeproc import Peer

    p = Peer(int(ros_environment["ROS_DOMAIN_ID"]))
    yield p
    p.close()


@pytest.fixture(scope="session")
def ros2_tools() -> None:
    """``launch``, ``launch_ros`` and ``ros2cli`` from ``../shared/ros2-tools`` installed into this
    venv (install.sh; idempotent), or a skip saying why when ``../shared`` does not hold them."""
    from ros2proc import install_script, install_tools

    script = install_script()
    if not script.is_file():
        pytest.skip(f"{script} is absent: the ROS 2 launch/CLI sources come from ../shared (not on PyPI)")
    try:
        install_tools()
    except RuntimeError as exc:
        pytest.fail(str(exc)[-4000:])


@pytest.fixture(scope="module")
def ros2_env(ros_environment, ros2_tools, tmp_path_factory):
    """Environment for ``ros2 ...`` processes on the module's domain (tools overlay sourced; ROS logs
    in a temporary folder, not ~/.ros/log), with the domain's ``ros2`` daemon running meanwhile."""
    from ros2proc import daemon, tools_env

    env = dict(tools_env(ros_environment), ROS_LOG_DIR=str(tmp_path_factory.mktemp("ros_log")))
    with daemon(env):
        yield env
