"""Frame counters behind /diagnostics and telemetry: every frame lands in exactly one bucket."""

from __future__ import annotations

import threading

from snn_perception.ros.diagnostics import FrameCounters, diagnostic_values


def test_dropped_is_the_sum_of_every_way_a_frame_can_fail():
    c = FrameCounters()
    c.add(received=10, overwritten=3, lost=2)
    c.error("rejected", "bad encoding")
    c.error("failed", "model raised")
    assert c.dropped == 3 + 2 + 1 + 1
    assert c.last_error == "model raised"


def test_counts_are_exact_under_concurrent_updates():
    c = FrameCounters()

    def work():
        for _ in range(2000):
            c.add(received=1, overwritten=1)
            c.done(5.0)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (c.received, c.overwritten, c.processed) == (8000, 8000, 8000)


def test_reset_clears_counts_but_keeps_the_last_error_for_diagnostics():
    c = FrameCounters()
    c.error("rejected", "zero-size image")
    c.done(3.0)
    c.reset()
    assert (c.processed, c.rejected, c.dropped) == (0, 0, 0)
    assert c.last_error == "zero-size image"


def test_diagnostic_levels_and_fixed_keys():
    c = FrameCounters()
    level, summary, values = diagnostic_values(c, "inactive", "snntrans_dhz/official", "abc", 4)
    assert level == 1 and "inactive" in summary
    level, summary, values = diagnostic_values(c, "active", "snntrans_dhz/official", "abc", 4)
    assert (level, summary) == (0, "ok")
    for k in ("frame rate (Hz)", "mean latency (ms)", "frames dropped", "model", "timesteps", "last error"):
        assert k in values
    c.done(40.0)
    c.done(60.0)
    _, _, values = diagnostic_values(c, "active", "m", "abc", 8)
    assert values["mean latency (ms)"] == "50.0" and values["timesteps"] == "8"
    c.error("rejected", "corrupt JPEG: truncated")
    level, summary, values = diagnostic_values(c, "active", "m", "abc", 8)
    assert level == 1 and "corrupt JPEG" in summary and values["frames rejected"] == "1"


def test_an_active_node_without_frames_warns_and_names_its_topic(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("snn_perception.ros.diagnostics.time.monotonic", lambda: now[0])
    c = FrameCounters()
    c.reset()  # activation
    now[0] += 4.0
    assert diagnostic_values(c, "active", "m", "abc", 4, "/rov/cam")[:2] == (0, "ok")
    now[0] += 2.0  # 6 s without a frame: a dead camera or a wrong remapping
    level, summary, values = diagnostic_values(c, "active", "m", "abc", 4, "/rov/cam")
    assert level == 1 and "no frames on /rov/cam for 6 s" in summary
    assert values["seconds since last frame"] == "none yet"
    c.add(received=1)
    now[0] += 1.0
    level, summary, values = diagnostic_values(c, "active", "m", "abc", 4, "/rov/cam")
    assert (level, summary, values["seconds since last frame"]) == (0, "ok", "1.0")
    now[0] += 10.0
    assert diagnostic_values(c, "active", "m", "abc", 4, "/rov/cam")[0] == 1


def test_the_output_rate_counts_intervals_as_ros2_topic_hz_does(monkeypatch):
    """Ten outputs at 2 Hz span 4.5 s: 2.0 Hz (counting outputs over the span read 2.2 Hz)."""
    from snn_perception.ros import diagnostics

    clock = [100.0]
    monkeypatch.setattr(diagnostics.time, "monotonic", lambda: clock[0])
    c = FrameCounters()
    for _ in range(10):
        c.done(30.0)
        clock[0] += 0.5
    clock[0] -= 0.4  # read 0.1 s after the last output
    rate, latency = c.rate_and_latency(5.0)
    assert abs(rate - 2.0) < 1e-9 and latency == 30.0
    clock[0] += 10.0  # nothing for longer than the window
    assert c.rate_and_latency(5.0) == (0.0, 0.0)
