"""A tiny ROS 2 peer for tests, run as a separate process.

``python rosproc.py pub|sub ...`` publishes or receives any message type so tests
exercise real DDS transport between processes, and reports what it received as JSON
lines on stdout (large byte arrays summarised by length and sha256).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "config" / "fastdds_localhost.xml"


def ros_env(domain_id: int, profile: Path | None = PROFILE) -> dict[str, str]:
    """Environment for a ROS process: loopback discovery, our Fast DDS profile, own domain."""
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["RMW_IMPLEMENTATION"] = "rmw_fastrtps_cpp"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    if profile is None:
        env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    else:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    return env


def xdist_workers(environ: Mapping[str, str] = os.environ) -> int:
    """How many pytest-xdist workers run this suite side by side (1 without xdist or with ``-n 0``)."""
    return int(environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def module_domain_id(environ: Mapping[str, str] = os.environ, seed: int | None = None) -> int:
    """A random ROS domain in 1..100 for one test module. Under pytest-xdist each worker draws from
    its own residue class (worker k of n: domains ≡ k mod n), so modules running at the same time in
    two workers never share a domain: their nodes have the same names and would answer each other."""
    workers = min(xdist_workers(environ), 100)  # past 100 classes are shared
    worker = int(environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    mine = [d for d in range(1, 101) if d % workers == worker % workers]
    return random.Random(os.getpid() ^ id(object()) if seed is None else seed).choice(mine)


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def msg_type(name: str) -> type:
    """``pkg/msg/Type`` or ``pkg.msg.Type`` → the message class."""
    pkg, kind, cls = name.replace(".", "/").split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), cls)


def to_dict(msg: Any) -> Any:
    """Message → JSON-able value; byte/uint8 arrays become {len, sha256}."""
    if hasattr(msg, "get_fields_and_field_types"):
        return {f: to_dict(getattr(msg, f)) for f in msg.get_fields_and_field_types()}
    if isinstance(msg, bytes | bytearray):
        return {"len": len(msg), "sha256": hashlib.sha256(msg).hexdigest()}
    if hasattr(msg, "tobytes") and getattr(msg, "typecode", None) in ("B", "b"):
        raw = msg.tobytes()
        return {"len": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    if isinstance(msg, list | tuple) or hasattr(msg, "tolist"):
        return [to_dict(v) for v in (msg.tolist() if hasattr(msg, "tolist") else msg)]
    return msg


def fill(msg: Any, values: dict[str, Any]) -> Any:
    for key, value in values.items():
        current = getattr(msg, key)
        if isinstance(value, dict) and hasattr(current, "get_fields_and_field_types"):
            fill(current, value)
        else:
            setattr(msg, key, value)
    return msg


def _qos(reliability: str, depth: int):
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    policy = ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort" else ReliabilityPolicy.RELIABLE
    return QoSProfile(depth=depth, reliability=policy)


def _test_image(width: int, height: int) -> bytes:
    import numpy as np

    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([(x * 7) % 256, (y * 3) % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    return img.tobytes()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["pub", "sub"])
    parser.add_argument("--type", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--json", default="{}", help="field values for pub")
    parser.add_argument("--image", default="", help="WxH: publish a generated rgb8 test image")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--reliability", default="reliable", choices=["reliable", "best_effort"])
    args = parser.parse_args()

    import rclpy

    rclpy.init()
    node = rclpy.create_node(f"rosproc_{args.mode}_{os.getpid()}")
    cls = msg_type(args.type)
    qos = _qos(args.reliability, depth=10)
    deadline = time.monotonic() + args.timeout
    try:
        if args.mode == "pub":
            pub = node.create_publisher(cls, args.topic, qos)
            msg = fill(cls(), json.loads(args.json))
            if args.image:
                width, height = (int(v) for v in args.image.split("x"))
                msg.width, msg.height, msg.encoding, msg.step = width, height, "rgb8", 3 * width
                msg.data = _test_image(width, height)
            sent = 0
            while time.monotonic() < deadline and (args.count <= 0 or sent < args.count):
                if pub.get_subscription_count() > 0:
                    pub.publish(msg)
                    sent += 1
                rclpy.spin_once(node, timeout_sec=1.0 / args.rate)
            print(json.dumps({"sent": sent}), flush=True)
        else:
            got: list[Any] = []
            node.create_subscription(cls, args.topic, got.append, qos)
            print(json.dumps({"ready": True}), flush=True)
            while time.monotonic() < deadline and len(got) < args.count:
                rclpy.spin_once(node, timeout_sec=0.1)
            for m in got:
                print(json.dumps({"msg": to_dict(m)}), flush=True)
            return 0 if len(got) >= args.count else 3
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
