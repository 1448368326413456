"""One glibc malloc arena for processes that run the engine on a worker thread.

Why: glibc gives each new thread its own malloc arena, and those arenas hand large freed blocks
back to the kernel eagerly. The nodes run inference on a worker thread, so every frame touched its
activations' pages afresh: at 720×1280 (dhz, T = 4, 2 cores) about 225,000 minor page faults per
frame, and 815–870 ms per frame against 610–660 ms for the same engine on the main thread. With one
arena (``M_ARENA_MAX`` = 1) the worker thread reuses the main arena's memory like the main thread
does: 4 faults per frame and 650 ms (``tools/node_bench.py``, the issue on timing tests).
The cost of one arena, lock contention between allocating threads, is negligible here: the other
threads (executor, middleware) allocate little.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def use_one_malloc_arena() -> bool:
    """Make every thread started *after* this call share the main malloc arena (glibc only).

    Call it first thing in a process's ``main``, before other threads exist: a thread that has
    already allocated keeps its own arena. A ``MALLOC_ARENA_MAX`` in the environment wins (glibc
    read it at start-up). Returns whether the setting was applied.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: no mallopt arenas
            return False
        return bool(libc.mallopt(_M_ARENA_MAX, 1))
    except OSError:
        return False
