"""Header stamps ↔ nanoseconds: one rule for nodes, recorder, replay and bags."""

from __future__ import annotations

from types import SimpleNamespace

from snn_perception.runtime.stamps import header_ns, split_ns


def test_stamps_round_trip_through_sec_and_nanosec() -> None:
    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_733_400_000_123_456_789):
        sec, nanosec = split_ns(ns)
        assert 0 <= nanosec < 1_000_000_000
        assert header_ns(SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec))) == ns
