"""Header stamps ↔ integer nanoseconds, the key by which outputs, references, masks and telemetry
are matched to their input frame everywhere (nodes, recorder, replay, bags). ROS-free: any object
with ``stamp.sec`` and ``stamp.nanosec`` will do."""

from __future__ import annotations

from typing import Any

NS_PER_S = 1_000_000_000


def header_ns(header: Any) -> int:
    """A message header's stamp in nanoseconds (0 for an unset stamp)."""
    return int(header.stamp.sec) * NS_PER_S + int(header.stamp.nanosec)


def split_ns(ns: int) -> tuple[int, int]:
    """Nanoseconds → ``(sec, nanosec)`` for a ``builtin_interfaces/Time``."""
    return int(ns) // NS_PER_S, int(ns) % NS_PER_S
