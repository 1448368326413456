"""Inference on a worker thread (as the nodes run it) must not page-fault through its activations
every frame: ``snn_perception.ros`` puts every thread on glibc's main malloc arena."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import sys
    if sys.argv[1] == "fix":
        import snn_perception.ros  # noqa: F401  (what every node process imports first)
    import resource, threading
    import numpy as np
    from snn_perception.runtime.engine import Engine

    engine = Engine.load("dhz", task="dehaze")
    image = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)

    def work():
        for _ in range(2):
            engine.run(image)

    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    work()
    f0 = faults(); work(); f1 = faults()
    t = threading.Thread(target=work); t.start(); t.join(); f2 = faults()
    t = threading.Thread(target=work); t.start(); t.join(); f3 = faults()
    print(f1 - f0, f3 - f2)
    """
)


def _faults(mode: str) -> tuple[int, int]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120, env=env, check=True
    )
    main, thread = out.stdout.split()
    return int(main), int(thread)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not ctypes.util.find_library("c"),
    reason="glibc malloc arenas only",
)
def test_a_worker_thread_runs_the_engine_without_page_faulting_every_frame() -> None:
    """Minor page faults of two 360×480 frames on the main thread and then on a fresh worker thread
    (its second frame on: the first ones warm the allocator). Measured on 2-core machines of this
    project's kind, without the fix: 50,000–59,000 on the worker thread in every run; with it, 2–6,700
    on either thread, the higher figures one-off 4,050-fault chunks that come and go (CI once saw 6,093
    against a main thread's 1,353). The bound sits between the two, below half of the pathology,
    instead of at a multiple of the noisy main-thread figure."""
    main, thread = _faults("fix")
    assert thread <= 20_000, f"worker thread {thread} faults per two frames (main thread {main})"
    plain_main, plain_thread = _faults("plain")  # shows the test can fail: the pathology without the fix
    print(f"faults per two frames, one arena: {main}, {thread}; without: {plain_main}, {plain_thread}")
