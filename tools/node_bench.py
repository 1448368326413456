#!/usr/bin/env python3
"""Benchmark the dehaze node under a camera stream, as separate processes on this computer.

    tools/node_bench.py [--rates 5 15 30] [--sizes 256 720p] [--seconds 12] [--weights dhz]
                        [--count-ops] [--json out.json]

For every rate × size, with and without a viewer subscribed to ``~/enhanced``: a node process
(``python -m snn_perception.ros.dehaze_node``), a camera process publishing at the rate, and
optionally a viewer process; this process collects ``~/telemetry``. Reported: node inference
median/p95, end-to-end p95 (stamp → published), frames dropped, CPU of the node's spin (main)
thread, its busiest other thread and the viewer, in % of one core. The same model, size and
counting setting are timed through the engine in this process first (``engine ms``), so the
ratio node/engine shows what the node adds. Needs the ROS environment (``make`` sets it; see the
README's shell set-up). Loopback only: ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a private
ROS_DOMAIN_ID unless one is set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZES = {"256": (256, 256), "512": (512, 512), "720p": (720, 1280), "1080p": (1080, 1920)}
NS = "/node_bench"


def _cpu_s(pid: int, tid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _threads(pid: int) -> dict[int, float]:
    try:
        return {int(t): _cpu_s(pid, int(t)) for t in os.listdir(f"/proc/{pid}/task")}
    except OSError:
        return {}


def camera(topic: str, rate: float, hw: tuple[int, int], seconds: float) -> int:
    """Role: publish frames (best effort, depth 1, as a camera driver does) at ``rate``."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_camera")
    pub = node.create_publisher(Image, topic, qos_profile_sensor_data)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (*hw, 3), dtype=np.uint8).tobytes() for _ in range(4)]
    msg = Image(height=hw[0], width=hw[1], encoding="rgb8", step=hw[1] * 3)
    t0, n = time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        stamp = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
        msg.data = frames[n % 4]
        pub.publish(msg)
        n += 1
        time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
    node.destroy_node()
    rclpy.shutdown()
    return 0


def viewer(topic: str, seconds: float) -> int:
    """Role: a viewer subscribed to the node's output (touches every byte, as a display would)."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_viewer")
    seen = [0]

    def on_image(msg: Image) -> None:
        seen[0] += 1
        np.frombuffer(msg.data, np.uint8).sum()

    node.create_subscription(Image, topic, on_image, qos_profile_sensor_data)
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps({"viewer_frames": seen[0]}), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


def _engine_ms(weights: str, hw: tuple[int, int], count_ops: bool, runs: int = 7) -> float:
    from snn_perception.runtime.engine import Engine, EngineConfig

    engine = Engine.load(weights, EngineConfig(count_ops=count_ops), task="dehaze")
    image = np.random.default_rng(0).integers(0, 256, (*hw, 3), dtype=np.uint8)
    engine.warmup(2, hw)
    return float(np.median([engine.run(image).stats.inference_ms for _ in range(runs)]))


def _spawn(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def measure(rate: float, size: str, with_viewer: bool, args: argparse.Namespace, env: dict) -> dict:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from snn_perception.msg import EnergyTelemetry

    hw = SIZES[size]
    node_args = [
        "-m",
        "snn_perception.ros.dehaze_node",
        "--ros-args",
        "-r",
        f"__ns:={NS}",
        "-p",
        f"weights:={args.weights}",
        "-p",
        f"count_ops:={str(args.count_ops).lower()}",
        "-p",
        "device:=cpu",
        "-p",
        f"max_input_pixels:={hw[0] * hw[1]}",
        "-p",
        "max_model_pixels:=0",  # the frame's own size, as the engine figures it is compared with
    ]
    node = _spawn(node_args, env)
    peer = rclpy.create_node("bench_collector")
    tels: list = []
    peer.create_subscription(
        EnergyTelemetry,
        f"{NS}/dehaze_node/telemetry",
        tels.append,
        QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
    )
    procs = []
    try:
        deadline = time.monotonic() + 120
        while peer.count_publishers(f"{NS}/dehaze_node/telemetry") == 0:  # the node is active
            rclpy.spin_once(peer, timeout_sec=0.1)
            if time.monotonic() > deadline or node.poll() is not None:
                raise RuntimeError(
                    f"the node did not start:\n{node.stdout.read() if node.poll() is not None else ''}"
                )
        time.sleep(2.0)
        if with_viewer:
            procs.append(
                _spawn(
                    [
                        __file__,
                        "--role",
                        "viewer",
                        "--topic",
                        f"{NS}/dehaze_node/enhanced",
                        "--seconds",
                        str(args.seconds + 4),
                    ],
                    env,
                )
            )
            time.sleep(1.5)
        cam = _spawn(
            [
                __file__,
                "--role",
                "camera",
                "--topic",
                f"{NS}/dehaze_node/image",
                "--rate",
                str(rate),
                "--size",
                size,
                "--seconds",
                str(args.seconds),
            ],
            env,
        )
        procs.append(cam)
        warm_until = time.monotonic() + 2.0
        while time.monotonic() < warm_until:
            rclpy.spin_once(peer, timeout_sec=0.05)
        tels.clear()
        cpu0, t0 = _threads(node.pid), time.monotonic()
        vcpu0 = _threads(procs[0].pid) if with_viewer else {}
        while cam.poll() is None:
            rclpy.spin_once(peer, timeout_sec=0.05)
        elapsed = time.monotonic() - t0
        cpu1 = _threads(node.pid)
        vcpu1 = _threads(procs[0].pid) if with_viewer else {}
        for _ in range(20):
            rclpy.spin_once(peer, timeout_sec=0.05)
    finally:
        for p in [*procs, node]:
            if p.poll() is None:
                p.send_signal(2)
        for p in [*procs, node]:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        peer.destroy_node()
    use = {tid: (cpu1.get(tid, 0.0) - cpu0.get(tid, 0.0)) / elapsed for tid in cpu1}
    others = sorted((v for tid, v in use.items() if tid != node.pid), reverse=True)
    inf = np.array([t.inference_ms for t in tels]) if tels else np.array([np.nan])
    e2e = np.array([t.end_to_end_ms for t in tels]) if tels else np.array([np.nan])
    return {
        "rate_hz": rate,
        "size": size,
        "viewer": with_viewer,
        "frames_out": len(tels),
        "inference_median_ms": float(np.median(inf)),
        "inference_p95_ms": float(np.percentile(inf, 95)),
        "e2e_p95_ms": float(np.percentile(e2e, 95)),
        "dropped": int(tels[-1].frames_dropped - tels[0].frames_dropped) if len(tels) > 1 else 0,
        "spin_thread_core": use.get(node.pid, 0.0),
        "busiest_other_thread_core": others[0] if others else 0.0,
        "viewer_core": sum(vcpu1.get(t, 0.0) - vcpu0.get(t, 0.0) for t in vcpu1) / elapsed
        if with_viewer
        else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--role", choices=["bench", "camera", "viewer"], default="bench", help=argparse.SUPPRESS)
    p.add_argument("--topic", help=argparse.SUPPRESS)
    p.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    p.add_argument(
        "--rates", type=float, nargs="+", default=[5, 15, 30], help="camera rates, Hz (default 5 15 30)"
    )
    p.add_argument(
        "--sizes",
        nargs="+",
        default=["256", "720p"],
        choices=list(SIZES),
        help="frame sizes (default 256 720p)",
    )
    p.add_argument("--seconds", type=float, default=12.0, help="stream length per case (default 12)")
    p.add_argument("--weights", default="dhz", help="dehaze weights (default dhz)")
    p.add_argument("--count-ops", action="store_true", help="node counts operations (telemetry energy)")
    p.add_argument("--no-viewer-cases", action="store_true", help="only the cases without a viewer")
    p.add_argument(
        "--executor",
        choices=["perception", "events"],
        default="perception",
        help="the node's executor (rclpy's experimental EventsExecutor or ours; default ours)",
    )
    p.add_argument("--json", type=Path, help="write the rows as JSON")
    args = p.parse_args(argv)
    if args.role == "camera":
        return camera(args.topic, args.rate, SIZES[args.size], args.seconds)
    if args.role == "viewer":
        return viewer(args.topic, args.seconds)
    if not args.seconds > 0 or any(r <= 0 for r in args.rates):
        p.error("--seconds and --rates must be positive")
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    env["SNN_PERCEPTION_EXECUTOR"] = args.executor
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")})
    import rclpy

    rows = []
    for size in args.sizes:
        engine_ms = _engine_ms(args.weights, SIZES[size], args.count_ops)
        print(f"engine {size}: inference median {engine_ms:.1f} ms (count_ops {args.count_ops})", flush=True)
        rclpy.init()
        try:
            for rate in args.rates:
                for with_viewer in (False,) if args.no_viewer_cases else (False, True):
                    row = measure(rate, size, with_viewer, args, env)
                    row["executor"] = args.executor
                    row["engine_median_ms"] = engine_ms
                    row["node_over_engine"] = row["inference_median_ms"] / engine_ms
                    rows.append(row)
                    print(
                        json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
                        flush=True,
                    )
        finally:
            rclpy.shutdown()
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
