"""Test harness for the perception nodes: each node runs in its own process, and the test talks to
it over loopback DDS through an in-test rclpy peer (its own context on the module's domain).

Everything is bounded: every wait has a timeout and says what it was waiting for.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DHZ_OFFICIAL = "snntrans_dhz_official_T4.pth"


def shared_dir() -> Path:
    return Path(os.environ.get("SNN_SHARED_DIR", REPO.parent / "shared")).resolve()


def dhz_weights() -> Path | None:
    path = shared_dir() / "weights" / DHZ_OFFICIAL
    return path if path.is_file() else None


def dhz_weights_or_skip() -> Path:
    import pytest

    weights = dhz_weights()
    if weights is None:
        pytest.skip("the official snnTrans-DHZ checkpoint is absent from ../shared/weights")
    return weights


def thread_cpu_s(pid: int, tid: int) -> float:
    """CPU time (user + system, seconds) of thread ``tid`` of process ``pid``, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(pred: Callable[[], Any], timeout: float, what: str, poll: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


class NodeProcess:
    """``python -m <module> --ros-args ...`` with its log in a file (shown when a test fails)."""

    def __init__(
        self,
        module: str,
        name: str,
        namespace: str,
        params: dict[str, Any],
        env: dict,
        log_dir: Path,
        remaps: dict[str, str] | None = None,
    ) -> None:
        self.name, self.namespace = name, namespace
        self.fqn = f"{namespace}/{name}"
        self.log_path = log_dir / f"{name}.log"
        args = [
            sys.executable,
            "-m",
            module,
            "--ros-args",
            "-r",
            f"__ns:={namespace}",
            "-r",
            f"__node:={name}",
        ]
        for key, value in params.items():
            args += ["-p", f"{key}:={_param_text(value)}"]
        for source, target in (remaps or {}).items():  # as ros2 launch remaps a node's topics
            args += ["-r", f"{source}:={target}"]
        self._log = open(self.log_path, "w")
        env = dict(env)
        env.setdefault("OMP_NUM_THREADS", "2")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(f"'{v}'" if isinstance(v, str) else str(v) for v in value) + "]"
    return str(value)


class Peer:
    """An rclpy node in the test process, spinning in a background thread."""

    def __init__(self, domain_id: int) -> None:
        import rclpy

        from snn_perception.ros.executor import PerceptionExecutor

        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO / "config" / "fastdds_localhost.xml")
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(f"test_peer_{os.getpid()}", context=self.context)
        self.executor = PerceptionExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def call(self, srv_type: type, name: str, request: Any, timeout: float = 30.0) -> Any:
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {name} is not available after {timeout:.0f} s")
            future = client.call_async(request)
            wait_for(future.done, timeout, f"a reply from {name}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def collect(self, msg_type: type, topic: str, reliable: bool = True, depth: int = 100) -> Collector:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        qos = QoSProfile(
            depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        )
        col = Collector(topic)
        col.sub = self.node.create_subscription(msg_type, topic, col.add, qos)
        return col

    def publisher(self, msg_type: type, topic: str, reliable: bool = True, depth: int = 1):
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        qos = QoSProfile(
            depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        )
        return self.node.create_publisher(msg_type, topic, qos)

    # -- lifecycle and parameters ----------------------------------------------------------------

    def get_state(self, fqn: str, timeout: float = 30.0) -> str:
        from lifecycle_msgs.srv import GetState

        return self.call(GetState, f"{fqn}/get_state", GetState.Request(), timeout).current_state.label

    def change_state(self, fqn: str, label: str, timeout: float = 120.0) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        ids = {
            "configure": Transition.TRANSITION_CONFIGURE,
            "cleanup": Transition.TRANSITION_CLEANUP,
            "activate": Transition.TRANSITION_ACTIVATE,
            "deactivate": Transition.TRANSITION_DEACTIVATE,
            "shutdown": Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
            "inactive_shutdown": Transition.TRANSITION_INACTIVE_SHUTDOWN,
            "active_shutdown": Transition.TRANSITION_ACTIVE_SHUTDOWN,
        }
        req = ChangeState.Request()
        req.transition = Transition(id=ids[label])
        return bool(self.call(ChangeState, f"{fqn}/change_state", req, timeout).success)

    def wait_state(self, fqn: str, label: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = "?"
        while time.monotonic() < deadline:
            try:
                last = self.get_state(fqn, timeout=5.0)
            except TimeoutError:
                last = "no service"
            if last == label:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{fqn} did not reach {label!r} in {timeout:.0f} s (last: {last})")

    def set_params(self, fqn: str, **values: Any) -> list[Any]:
        """Set parameters one call each; returns the SetParametersResult of each."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        results = []
        for key, value in values.items():
            req = SetParameters.Request()
            req.parameters = [Parameter(key, value=value).to_parameter_msg()]
            results.append(self.call(SetParameters, f"{fqn}/set_parameters", req).results[0])
        return results

    def get_params(self, fqn: str, *names: str) -> list[Any]:
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python

        req = GetParameters.Request(names=list(names))
        return [
            parameter_value_to_python(v)
            for v in self.call(GetParameters, f"{fqn}/get_parameters", req).values
        ]


class Collector:
    """Thread-safe list of received messages with their arrival time."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.msgs: list[Any] = []
        self.times: list[float] = []
        self.wall_ns: list[int] = []  # arrival on the system clock, comparable with header stamps
        self.lock = threading.Lock()
        self.sub = None

    def add(self, msg: Any) -> None:
        with self.lock:
            self.wall_ns.append(time.time_ns())
            self.msgs.append(msg)
            self.times.append(time.monotonic())

    def __len__(self) -> int:
        with self.lock:
            return len(self.msgs)

    def snapshot(self) -> list[Any]:
        with self.lock:
            return list(self.msgs)

    def stamps(self) -> set[int]:
        return {stamp_ns(m.header) for m in self.snapshot()}

    def clear(self) -> None:
        with self.lock:
            self.msgs.clear()
            self.times.clear()
            self.wall_ns.clear()


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def diagnostics_of(collector: Collector, fqn: str) -> dict[str, str]:
    """The key/values of the newest DiagnosticStatus of node ``fqn`` ({} if none yet)."""
    for arr in reversed(collector.snapshot()):
        for st in arr.status:
            if st.name.startswith(fqn + ":"):
                return {kv.key: kv.value for kv in st.values}
    return {}


def stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def image_msg(rgb, stamp_ns_: int, frame_id: str, encoding: str = "rgb8"):
    """An RGB array as a sensor_msgs/Image in ``encoding`` (rgb8, bgr8 or mono8)."""
    import numpy as np
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns_, 1_000_000_000)
    msg.header.frame_id = frame_id
    if encoding == "bgr8":
        arr = rgb[..., ::-1]
    elif encoding == "mono8":
        arr = rgb[..., 1]
    else:
        arr = rgb
    arr = np.ascontiguousarray(arr)
    msg.height, msg.width, msg.encoding = arr.shape[0], arr.shape[1], encoding
    msg.step = arr.shape[1] * (1 if arr.ndim == 2 else arr.shape[2])
    msg.data = arr.tobytes()
    return msg


def compressed_msg(rgb, stamp_ns_: int, frame_id: str, fmt: str = "jpeg"):
    from sensor_msgs.msg import CompressedImage

    from snn_perception.runtime.image_codec import encode_compressed

    msg = CompressedImage()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns_, 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.format = fmt
    msg.data = encode_compressed(rgb, fmt)
    return msg


def segment_weights() -> str | None:
    """``$SNN_SEGMENT_WEIGHTS``, else the registry's default segment model, else None."""
    env = os.environ.get("SNN_SEGMENT_WEIGHTS")
    if env:
        return env if Path(env).is_file() else None
    from snn_perception.runtime import weights as weights_registry
    from snn_perception.runtime.checkpoint import WeightsError

    try:
        return str(weights_registry.resolve(weights_registry.default_weights("segment")))
    except WeightsError:
        return None


SUIM_COLORS = [
    [0, 0, 0],
    [0, 0, 255],
    [0, 255, 0],
    [0, 255, 255],
    [255, 0, 0],
    [255, 0, 255],
    [255, 255, 0],
    [255, 255, 255],
]


def untrained_spiking_unet(path: Path, width: int = 4) -> str:
    """A real ``spiking_unet`` checkpoint with random weights (seeded), for node plumbing tests when
    no trained segmenter is available: its masks are meaningless but must still be valid ids."""
    import torch

    from snn_perception.models.spiking_unet import build_spiking_unet
    from snn_perception.runtime.checkpoint import save_checkpoint

    torch.manual_seed(0)
    meta = {
        "arch": "spiking_unet",
        "task": "segment",
        "variant": f"untrained-w{width}",
        "unet": {"width": width, "num_classes": 8, "head": "segment"},
        "num_classes": 8,
        "default_timesteps": 4,
        "class_names": [f"class{i}" for i in range(8)],
        "class_colors": SUIM_COLORS,
    }
    save_checkpoint(path, build_spiking_unet(meta).state_dict(), meta)
    return str(path)


def lsui_frames(n: int) -> list:
    """``n`` real 720×405 underwater frames (RGB) from ../shared, or [] when absent."""
    import cv2

    folder = shared_dir() / "data" / "lsui_pairs" / "raw"
    images = (cv2.imread(str(f)) for f in sorted(folder.glob("*.jpg")))
    out = [
        cv2.cvtColor(im, cv2.COLOR_BGR2RGB) for im in images if im is not None and im.shape == (405, 720, 3)
    ]
    return out[:n] if len(out) >= n else []


@contextlib.contextmanager
def running_node(
    peer: Peer,
    module: str,
    namespace: str,
    params: dict[str, Any],
    env: dict[str, str],
    log_dir: Path,
    state: str = "active",
    ready: tuple[Callable[[], Any], str] | None = None,
):
    """A node process that reached ``state`` (and ``ready``, e.g. its subscription); on exit it must
    stop cleanly on SIGINT. Start-up failures fail the test with the node's log."""
    import pytest

    name = module.rsplit(".", 1)[-1]
    proc = NodeProcess(module, name, namespace, params, env, log_dir)
    try:
        peer.wait_state(proc.fqn, state, timeout=120)
        if ready is not None:
            wait_for(ready[0], 30, ready[1])
    except TimeoutError as exc:
        proc.stop()
        pytest.fail(f"{exc}\n--- node log ---\n{proc.log()}")
    yield proc
    rc = proc.stop()
    assert rc == 0, f"{name} exited with {rc} on SIGINT\n{proc.log()}"
