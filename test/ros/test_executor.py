"""PerceptionExecutor: callbacks run in parallel, errors surface, and the spin thread waits for a
free pool thread instead of looping (why it exists: snn_perception/ros/executor.py)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from nodeproc import thread_cpu_s

pytest.importorskip("rclpy")


@pytest.fixture
def context(ros_environment):
    import rclpy

    for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE"):
        os.environ[key] = ros_environment[key]
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(ros_environment["ROS_DOMAIN_ID"]))
    yield ctx
    rclpy.try_shutdown(context=ctx)


def _spin_in_thread(executor) -> tuple[threading.Thread, list[int]]:
    tid: list[int] = []

    def run() -> None:
        tid.append(threading.get_native_id())
        executor.spin()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, tid


def test_spin_thread_waits_while_every_pool_thread_is_busy(context):
    """Both pool threads run long callbacks while a third callback is ready: it runs once a thread
    is free, and meanwhile the spin thread waits rather than loops (a looping spin thread holds the
    GIL that the node's inference worker needs; the node-level check is in test_dehaze_node.py)."""
    if not Path("/proc/self/task").is_dir():
        pytest.skip("needs /proc to read a thread's CPU time")
    import rclpy
    from rclpy.callback_groups import MutuallyExclusiveCallbackGroup

    from snn_perception.ros.executor import PerceptionExecutor

    node = rclpy.create_node("exec_busy", context=context)
    release = threading.Event()
    busy = threading.Semaphore(0)
    ran: list[float] = []

    def slow() -> None:
        busy.release()
        release.wait(10)

    timers = [node.create_timer(0.01, slow, callback_group=MutuallyExclusiveCallbackGroup()) for _ in "ab"]
    timers.append(node.create_timer(0.01, lambda: ran.append(time.monotonic())))
    executor = PerceptionExecutor(num_threads=2, context=context)
    executor.add_node(node)
    thread, tid = _spin_in_thread(executor)
    try:
        assert busy.acquire(timeout=5) and busy.acquire(timeout=5), "the slow callbacks did not start"
        cpu0, t0 = thread_cpu_s(os.getpid(), tid[0]), time.monotonic()
        time.sleep(1.5)
        spin_share = (thread_cpu_s(os.getpid(), tid[0]) - cpu0) / (time.monotonic() - t0)
        ran_while_busy = len(ran)
        release.set()
        deadline = time.monotonic() + 5
        while not ran and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        release.set()
        for t in timers:
            t.cancel()
        executor.shutdown(timeout_sec=5)
        thread.join(timeout=5)
        node.destroy_node()
    print(f"spin thread CPU while the pool was full: {spin_share:.0%}")
    assert ran_while_busy == 0, "a third callback ran although both pool threads were busy"
    assert ran, "the waiting callback never ran once a pool thread was free"
    assert spin_share < 0.2, f"the spin thread used {spin_share:.0%} of a core waiting for a pool thread"


def test_a_slow_callback_does_not_hold_up_others_and_errors_surface_in_spin(context):
    import rclpy
    from rclpy.callback_groups import MutuallyExclusiveCallbackGroup

    from snn_perception.ros.executor import PerceptionExecutor

    node = rclpy.create_node("exec_par", context=context)
    release, fast_done = threading.Event(), threading.Event()
    slow = node.create_timer(0.01, lambda: release.wait(5), callback_group=MutuallyExclusiveCallbackGroup())
    node.create_timer(0.05, fast_done.set, callback_group=MutuallyExclusiveCallbackGroup())
    executor = PerceptionExecutor(num_threads=2, context=context)
    executor.add_node(node)
    thread, _ = _spin_in_thread(executor)
    try:
        assert fast_done.wait(3), "a callback waited behind a slow one in another thread"
    finally:
        slow.cancel()
        release.set()
        executor.shutdown(timeout_sec=5)
        thread.join(timeout=5)

    def boom() -> None:
        raise RuntimeError("callback failed")

    bad = rclpy.create_node("exec_err", context=context)
    bad.create_timer(0.01, boom)
    executor = PerceptionExecutor(num_threads=2, context=context)
    executor.add_node(bad)
    with pytest.raises(RuntimeError, match="callback failed"):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
    executor.shutdown(timeout_sec=5)
    node.destroy_node()
    bad.destroy_node()


def test_spin_once_after_the_context_was_shut_down_returns_quietly(context):
    """Ctrl-C's handler shuts the context down from the signal, so it can land between a spin loop's
    ``rclpy.ok()`` check and rclpy building its wait set, which then raises ``RCLError`` ("the given
    context is not valid"); a CI run of ``bringup`` died on exactly that. A shut-down context is the
    same state without the timing: spin_once must return, not raise."""
    import rclpy
    from rclpy._rclpy_pybind11 import RCLError
    from rclpy.executors import Executor

    from snn_perception.ros.executor import PerceptionExecutor

    node = rclpy.create_node("exec_shutdown", context=context)
    executor = PerceptionExecutor(num_threads=2, context=context)
    executor.add_node(node)
    executor.spin_once(timeout_sec=0.05)
    rclpy.shutdown(context=context)
    with pytest.raises(RCLError, match="context is not valid"):  # what rclpy itself does here
        Executor.wait_for_ready_callbacks(executor, 0.05, None, lambda: False)
    executor.spin_once(timeout_sec=0.05)
    executor.shutdown(timeout_sec=5)
    node.destroy_node()


def test_a_callback_cut_off_by_ctrl_c_mid_publish_is_part_of_the_shutdown(context, ros_environment):
    """Ctrl-C's handler can shut the context down while a timer callback is publishing; rclpy then
    raises ``RCLError`` ("publisher's context is invalid") from ``publish``, and a CI run of the
    launch file saw image_source_node exit 1 with that traceback; once the shutdown has destroyed
    the node (as here, where it runs first), ``publish`` raises ``InvalidHandle``. Either is the
    shutdown; an ``RCLError`` from a callback on a live context still surfaces in spin."""
    import rclpy
    from rclpy._rclpy_pybind11 import RCLError
    from std_msgs.msg import String

    from snn_perception.ros.executor import PerceptionExecutor

    node = rclpy.create_node("exec_pub_shutdown", context=context)
    pub = node.create_publisher(String, "~/out", 1)
    attempts: list[str] = []

    def tick() -> None:
        if not attempts:
            attempts.append("shutdown")
            rclpy.shutdown(context=context)  # what rclpy's SIGINT handler does
            pub.publish(String(data="x"))

    node.create_timer(0.01, tick)
    executor = PerceptionExecutor(num_threads=2, context=context)
    executor.add_node(node)
    deadline = time.monotonic() + 5
    while not attempts and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    for _ in range(5):  # the failed callback's result is collected here: it must not raise
        executor.spin_once(timeout_sec=0.05)
    assert attempts == ["shutdown"], "the timer never ran"
    executor.shutdown(timeout_sec=5)
    node.destroy_node()

    live = rclpy.Context()
    rclpy.init(context=live, domain_id=int(ros_environment["ROS_DOMAIN_ID"]))
    bad = rclpy.create_node("exec_pub_live", context=live)

    def fails() -> None:
        raise RCLError("publish failed on a live context")

    bad.create_timer(0.01, fails)
    executor = PerceptionExecutor(num_threads=2, context=live)
    executor.add_node(bad)
    try:
        with pytest.raises(RCLError, match="live context"):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown(timeout_sec=5)
        bad.destroy_node()
        rclpy.try_shutdown(context=live)


def test_fewer_than_two_threads_is_refused(context):
    from snn_perception.ros.executor import PerceptionExecutor

    with pytest.raises(ValueError, match="num_threads must be ≥ 2"):
        PerceptionExecutor(num_threads=1, context=context)


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_an_executor_asked_for_after_ctrl_c_is_none_not_a_traceback(context):
    """A Ctrl-C between a node's construction and its executor's shuts the context down, and rclpy's
    Executor constructor then raises "context is not valid" (CI saw image_source_node die so, -2):
    start_executor hands back None, and the process ends as after any Ctrl-C. Any other RCLError,
    on a live context, still surfaces. The half-built executor is collected without an "Exception
    ignored" traceback (the filter makes one fail this test)."""
    import rclpy
    from rclpy._rclpy_pybind11 import RCLError

    from snn_perception.ros.executor import PerceptionExecutor, start_executor

    def make():
        return PerceptionExecutor(num_threads=2, context=context)

    def fails():
        raise RCLError("some other failure")

    def interrupted_while_making():
        rclpy.shutdown(context=context)  # what rclpy's SIGINT handler does
        return make()

    executor = start_executor(make, context)
    assert isinstance(executor, PerceptionExecutor)
    executor.shutdown(timeout_sec=5)
    with pytest.raises(RCLError, match="some other failure"):
        start_executor(fails, context)
    assert start_executor(interrupted_while_making, context) is None
    with pytest.raises(RCLError, match="context is not valid"):  # what rclpy itself does here
        make()
    assert start_executor(make, context) is None


NODE_MODULES = ["snn_perception.ros.segment_node", "snn_perception.ros.image_source_node"]


@pytest.mark.parametrize("module", NODE_MODULES)
def test_a_node_process_ends_with_0_however_many_ctrl_cs_arrive(ros_environment, peer, tmp_path, module):
    """Ctrl-C on ``ros2 launch`` in a terminal reaches a node twice (the terminal's SIGINT to the
    process group, then launch's own); segment_node used to die with -2 when the second one landed
    in its teardown or interpreter exit. Here SIGINTs keep coming every 50 ms until it has exited."""
    import signal
    import subprocess

    from nodeproc import NodeProcess, wait_for

    name = module.rsplit(".", 1)[-1]
    params = {"device": "cpu"} if name == "segment_node" else {"source": str(tmp_path), "rate_hz": 5.0}
    if name == "image_source_node":
        import cv2
        import numpy as np

        cv2.imwrite(str(tmp_path / "f.png"), np.zeros((8, 8, 3), np.uint8))
    proc = NodeProcess(module, name, "/sigint", params, ros_environment, tmp_path)
    try:
        if name == "segment_node":
            peer.wait_state(proc.fqn, "active", timeout=120)
        else:
            wait_for(lambda: "publishing" in proc.log(), 60, f"{name} to start publishing")
        deadline = time.monotonic() + 60
        while proc.proc.poll() is None and time.monotonic() < deadline:
            proc.proc.send_signal(signal.SIGINT)
            time.sleep(0.05)
        rc = proc.proc.wait(timeout=10)
    except (TimeoutError, subprocess.TimeoutExpired):
        proc.stop()
        raise
    assert rc == 0, f"{name} exited with {rc}\n{proc.log()}"
    assert "Traceback" not in proc.log(), proc.log()


def test_an_unknown_executor_name_is_refused_with_the_choices(context):
    from snn_perception.ros.executor import EXECUTOR_ENV, PerceptionExecutor, make_executor

    with pytest.raises(ValueError, match="expected 'perception' or 'events'"):
        make_executor("fast")
    assert EXECUTOR_ENV == "SNN_PERCEPTION_EXECUTOR"
    executor = make_executor("perception", context=context)
    assert isinstance(executor, PerceptionExecutor)
    executor.shutdown()
