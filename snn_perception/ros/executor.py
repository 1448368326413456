"""A multi-threaded rclpy executor that submits each callback once and waits for its pool.

rclpy's ``MultiThreadedExecutor`` yields again, and submits to its pool again, every callback task
that no pool thread has started yet, at every wake-up of its spin loop, and scans all submissions
on each pass. In a perception node the pool threads are slow to start a task (they need the GIL,
which the inference worker takes back after every torch op) and frames wake the loop many times a
second, so the spin thread can fall into looping with the GIL: measured on 2 cores with 30 Hz
input, the spin thread at 65 % of a core and 256² dehaze frames of ~95 ms taking 1.1–1.5 s (p95),
in some runs and not others. :class:`PerceptionExecutor` submits each task exactly once and, when
a task is yielded again before a pool thread took it, blocks on that task's start instead of
looping. Callbacks still run in parallel, so a slow ``~/load_model`` or lifecycle transition never
holds up frames or other services.

It also owns how a node process ends: :func:`quiet_interrupts` and :func:`run_node`.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rclpy._rclpy_pybind11 import InvalidHandle, RCLError
from rclpy.context import Context
from rclpy.executors import (
    ConditionReachedException,
    Executor,
    ExternalShutdownException,
    ShutdownException,
    TimeoutException,
)

from snn_perception.ros.launcher_watch import watch_launcher

_IDLE = (ConditionReachedException, ExternalShutdownException, ShutdownException, TimeoutException)


class PerceptionExecutor(Executor):
    """Runs callbacks in a pool of ``num_threads`` threads; see the module docstring for why."""

    #: rclpy's ``Executor.__del__`` reads this, and its ``__init__`` sets it last: when a Ctrl-C has
    #: shut the context down, ``__init__`` raises before that, and the half-built executor's
    #: ``__del__`` would print an "Exception ignored … no attribute '_sigint_gc'" traceback at exit
    _sigint_gc: Any = None

    def __init__(self, num_threads: int = 4, *, context: Any = None) -> None:
        super().__init__(context=context)
        if num_threads < 2:
            raise ValueError(f"num_threads must be ≥ 2 (one for frames, one for services), got {num_threads}")
        self._pool = ThreadPoolExecutor(num_threads, thread_name_prefix="ros_callback")
        self._waiting: dict[Any, threading.Event] = {}  # submitted tasks no pool thread has started
        self._submitted: list[Any] = []
        self._lock = threading.Lock()

    def _run(self, task: Any, started: threading.Event) -> None:
        with self._lock:
            self._waiting.pop(task, None)
        started.set()
        task()

    def _spin_once_impl(
        self, timeout_sec: float | None = None, wait_condition: Callable[[], bool] = lambda: False
    ) -> None:
        try:
            task, _, _ = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except _IDLE:
            return
        except RCLError:
            # Ctrl-C's handler shut the context down between rclpy's ok() check and its wait-set
            # construction ("the given context is not valid"): that is a shutdown, not a failure
            if self._context.ok():
                raise
            return
        with self._lock:
            started = self._waiting.get(task)
            if started is None:
                started = self._waiting[task] = threading.Event()
                self._submitted.append(task)
                self._pool.submit(self._run, task, started)
                started = None
        if started is not None:
            started.wait(0.05)  # yielded again before a pool thread took it: wait, do not spin
        for done in [t for t in self._submitted if t.done()]:
            self._submitted.remove(done)
            try:
                done.result()  # a callback's exception surfaces in spin(), as with rclpy's executors
            except (RCLError, InvalidHandle):
                # a callback that was publishing when Ctrl-C shut the context down fails with
                # "publisher's context is invalid" (CI saw image_source_node exit 1 so), or, once
                # the shutdown has destroyed the node, "destruction was requested": both are the
                # shutdown; on a live context the error still surfaces
                if self._context.ok():
                    raise

    def spin_once(self, timeout_sec: float | None = None) -> None:
        self._spin_once_impl(timeout_sec)

    def spin_once_until_future_complete(self, future: Any, timeout_sec: float | None = None) -> None:
        future.add_done_callback(lambda _: self.wake())
        self._spin_once_impl(timeout_sec, future.done)

    def shutdown(self, timeout_sec: float | None = None, *, wait_for_threads: bool = True) -> bool:
        ok = super().shutdown(timeout_sec)
        self._pool.shutdown(wait=wait_for_threads)
        return ok


_interrupted = threading.Event()


def _note_interrupt(signum: int, frame: Any) -> None:
    _interrupted.set()


def quiet_interrupts() -> None:
    """Make Ctrl-C end the process through rclpy's context shutdown, never as a KeyboardInterrupt.

    Why: Ctrl-C on ``ros2 launch`` in a terminal reaches each node twice (the terminal signals the
    whole process group, then launch sends its own SIGINT), and the second one used to kill a node
    in its teardown or interpreter exit with exit code -2. Call before ``rclpy.init``: its handler
    (which shuts every context down, so ``spin`` returns) chains to this one, which only notes the
    signal. Call :func:`ignore_interrupts` once rclpy is shut down.
    """
    signal.signal(signal.SIGINT, _note_interrupt)


def ignore_interrupts() -> None:
    """Ignore SIGINT for the rest of the process; call after ``rclpy.try_shutdown`` (:func:`finish`).

    Python's exit puts the default action back for every signal with a Python handler, so a late
    second Ctrl-C would kill the exiting process with -2; an ignored signal stays ignored.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def interrupted() -> bool:
    """Whether a SIGINT arrived since :func:`quiet_interrupts` (e.g. before ``rclpy.init``)."""
    return _interrupted.is_set()


#: the node processes' executor: ``perception`` (the default) or ``events``, rclpy's experimental
#: C++ ``EventsExecutor``, kept only to measure one against the other (``tools/node_bench.py
#: --executor``). Not for use: in rclpy 9.1.2 its ``spin`` busy-waits (a plain Node with nothing to
#: do: 4.6 s CPU in 5 s; our dehaze node idle: ~1 core against 0.19 with ours, and 0 outputs at
#: 30 Hz), and its one thread would hold frames up behind a slow ``~/load_model``.
EXECUTOR_ENV = "SNN_PERCEPTION_EXECUTOR"


def make_executor(kind: str | None = None, context: Context | None = None) -> Executor:
    """The executor ``run_node`` spins: ``kind``, else ``$SNN_PERCEPTION_EXECUTOR``, else ``perception``."""
    import os

    kind = kind or os.environ.get(EXECUTOR_ENV, "perception")
    if kind == "perception":
        return PerceptionExecutor(num_threads=4, context=context)
    if kind == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor(context=context)
    raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected 'perception' or 'events'")


def start_executor(make: Callable[[], Executor], context: Context | None = None) -> Executor | None:
    """``make()``, or None when Ctrl-C shut the context down before or while it ran.

    Why: a node process calls this after ``rclpy.init`` and its nodes' construction, and a Ctrl-C
    that lands in between makes rclpy's executor constructor raise "the given context is not valid";
    left uncaught, the traceback ends the process, and the next SIGINT then kills it with -2.
    """
    from rclpy.utilities import get_default_context

    context = context or get_default_context()
    if not context.ok():
        return None
    try:
        return make()
    except RCLError:
        if context.ok():
            raise
        return None


def run_node(node_cls: type, args: list[str] | None = None) -> int:
    """``main()`` of a perception node executable: spin until Ctrl-C or shutdown, then tear down.

    Exit codes: 0 after Ctrl-C, SIGTERM or a lifecycle shutdown; 2 when a parameter given on the
    command line or in a parameter file is refused (out of range, wrong type), with one line saying so.
    """
    import rclpy
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    quiet_interrupts()
    rclpy.init(args=args)
    if interrupted():
        return finish(0)
    try:
        node = node_cls()
    except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
        from snn_perception.ros.param_types import refusal

        print(f"{node_cls.default_name}: {refusal(exc)}", file=sys.stderr)
        return finish(2)
    except Exception:
        if rclpy.ok():
            raise
        return finish(0)  # interrupted while starting: the context was shut down under the constructor
    spin_until_shutdown(node, make_executor)
    return 0


def spin_until_shutdown(node: Any, make: Callable[[], Executor]) -> None:
    """Spin ``node`` on ``make()`` until Ctrl-C, SIGTERM, a shutdown or the end of the ``ros2 launch``
    that started it (:mod:`~snn_perception.ros.launcher_watch`), then tear the node down
    (its ``teardown()`` if it has one), destroy it and :func:`finish`. A Ctrl-C that lands before
    the executor exists (:func:`start_executor`) skips the spin, not the teardown."""
    watch_launcher(node)  # started by our launch file: end with it (it orphans its nodes on SIGTERM)
    executor = start_executor(make)
    try:
        if executor is not None:
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):  # KeyboardInterrupt: a caller's own handler
        pass
    finally:
        if hasattr(node, "teardown"):
            node.teardown()
        if executor is not None:
            executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        finish(0)


def finish(code: int = 0) -> int:
    """Shut rclpy down and ignore later Ctrl-Cs (see :func:`ignore_interrupts`); returns ``code``."""
    import rclpy

    rclpy.try_shutdown()
    ignore_interrupts()
    return code
