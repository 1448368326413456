"""Frame counters and their ``/diagnostics`` report, kept apart from the node so they are testable.

The key names are fixed (dashboards and ``rqt_runtime_monitor`` match on them), in the spirit of
the Isaac ROS and image_pipeline nodes: frame rate, mean latency, dropped and rejected frames,
the model, T, and the last error.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class FrameCounters:
    """Thread-safe counts since activation; the worker and the subscription both update them."""

    received: int = 0
    processed: int = 0
    overwritten: int = 0  # replaced in the one-frame slot before the worker took them
    lost: int = 0  # never reached the callback (gaps in the publisher's sequence numbers)
    rejected: int = 0  # malformed, refused by the decoder
    failed: int = 0  # the model raised
    last_error: str = ""
    last_error_time: float = 0.0
    started: float = field(default_factory=time.monotonic)  # activation (reset)
    last_received: float = 0.0  # monotonic time of the newest frame, 0 = none since activation
    _recent: deque = field(default_factory=lambda: deque(maxlen=120))  # (t_done, latency_ms)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def dropped(self) -> int:
        """Every frame that was sent to us and produced no output."""
        return self.overwritten + self.lost + self.rejected + self.failed

    def reset(self) -> None:
        with self._lock:
            self.received = self.processed = self.overwritten = self.lost = self.rejected = self.failed = 0
            self._recent.clear()
            self.started, self.last_received = time.monotonic(), 0.0

    def add(self, **deltas: int) -> None:
        with self._lock:
            for k, v in deltas.items():
                setattr(self, k, getattr(self, k) + v)
            if deltas.get("received"):
                self.last_received = time.monotonic()

    def error(self, kind: str, message: str) -> None:
        with self._lock:
            setattr(self, kind, getattr(self, kind) + 1)
            self.last_error = message
            self.last_error_time = time.monotonic()

    def done(self, latency_ms: float) -> int:
        with self._lock:
            self.processed += 1
            self._recent.append((time.monotonic(), latency_ms))
            return self.processed

    def rate_and_latency(self, window_s: float = 5.0) -> tuple[float, float]:
        """Output rate (Hz) and mean end-to-end latency (ms) over the last ``window_s`` seconds.

        The rate counts intervals between outputs, as ``ros2 topic hz`` does: n outputs span n - 1
        of them (n over the span read a 2 Hz stream as 2.2 Hz in a 5 s window).
        """
        now = time.monotonic()
        with self._lock:
            recent = [(t, lat) for t, lat in self._recent if now - t <= window_s]
        if not recent:
            return 0.0, 0.0
        latency = sum(lat for _, lat in recent) / len(recent)
        if len(recent) == 1:
            return 1.0 / window_s, latency
        return (len(recent) - 1) / max(recent[-1][0] - recent[0][0], 1e-3), latency


def status_line(name: str, state: str, counters: FrameCounters, window_s: float = 5.0) -> str:
    """One node in a few words for a terminal (``bringup``'s periodic status): state, output rate
    and mean latency over the last ``window_s``, and the totals since activation."""
    rate, latency = counters.rate_and_latency(window_s)
    if state != "active":
        return f"{name} {state}"
    if not counters.received:
        return f"{name} active, no frames yet"
    return (
        f"{name} {rate:.1f} fps, {latency:.0f} ms, {counters.processed} done, "
        f"{counters.dropped} dropped of {counters.received}"
    )


def diagnostic_values(
    counters: FrameCounters,
    state: str,
    model: str,
    weights_id: str,
    timesteps: int,
    topic: str = "",
    stale_after_s: float = 5.0,
    weights: str = "",
) -> tuple[int, str, dict[str, str]]:
    """(level 0 OK / 1 WARN / 2 ERROR, summary, key → value) for one DiagnosticStatus.

    An active node that has had no frame for ``stale_after_s`` warns: a dead camera, a wrong
    remapping or a raw/compressed mismatch otherwise looks healthy.
    """
    rate, latency = counters.rate_and_latency()
    now = time.monotonic()
    recent_error = counters.last_error and now - counters.last_error_time < 10.0
    idle_s = now - (counters.last_received or counters.started)
    if state != "active":
        level, summary = (1, f"{state}: not processing")
    elif idle_s > stale_after_s:
        where = topic or "the input topic"
        hint = "check the camera, the topic remapping and input_transport"
        level, summary = 1, f"no frames on {where} for {idle_s:.0f} s: {hint}"
    elif recent_error:
        level, summary = 1, f"last error: {counters.last_error}"
    else:
        level, summary = 0, "ok"
    since_last = f"{now - counters.last_received:.1f}" if counters.last_received else "none yet"
    values = {
        "state": state,
        "frame rate (Hz)": f"{rate:.2f}",
        "mean latency (ms)": f"{latency:.1f}",
        "frames received": str(counters.received),
        "frames processed": str(counters.processed),
        "frames dropped": str(counters.dropped),
        "frames overwritten": str(counters.overwritten),
        "frames lost in transport": str(counters.lost),
        "frames rejected": str(counters.rejected),
        "frames failed": str(counters.failed),
        "seconds since last frame": since_last,
        "model": model,
        "weights": weights,  # the name (dhz, dhz_v3, …) or the path the serving model was loaded from
        "weights id": weights_id,
        "timesteps": str(timesteps),
        "last error": counters.last_error,
    }
    return level, summary, values


@dataclass
class BudgetStats:
    """Frames run under a latency/energy budget over the last ``window`` frames: how often the
    budget was missed and how many timesteps ran (the T histogram an operator tunes by)."""

    window: int = 200
    _recent: deque = field(default_factory=lambda: deque(maxlen=200))  # (timesteps, missed)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, stats) -> None:
        """Record one frame's :class:`~snn_perception.runtime.stats.FrameStats` (unbudgeted ones
        are not counted)."""
        if not (stats.latency_budget_ms > 0 or stats.energy_budget_mj > 0):
            return
        with self._lock:
            self._recent.append((int(stats.timesteps), bool(stats.budget_missed)))

    def reset(self) -> None:
        with self._lock:
            self._recent.clear()

    def values(self) -> dict[str, str]:
        """Diagnostic key → value; empty while no budgeted frame was seen."""
        with self._lock:
            recent = list(self._recent)[-self.window :]
        if not recent:
            return {}
        hist: dict[int, int] = {}
        for t, _ in recent:
            hist[t] = hist.get(t, 0) + 1
        missed = sum(m for _, m in recent)
        return {
            "budget miss rate": f"{missed / len(recent):.3f}",
            "budget frames": str(len(recent)),
            "timesteps histogram": " ".join(f"T{t}:{n}" for t, n in sorted(hist.items())),
        }
