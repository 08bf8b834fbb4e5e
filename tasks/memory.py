"""Handing memory back to the system after a big upload, in the prefork pool processes.

Parsing a large file makes millions of small objects. Once they are freed, glibc keeps most of that heap
mapped (freed chunks sit in its arenas below the top of the heap), so a pool process that once read a huge
or hostile file stays hundreds of MB larger for good: six failed 3 M-point files took a worker from 0.8 to
2 GB. ``malloc_trim`` returns those free pages; measured on such a file it takes a process from 150 MB back
to its 35 MB baseline. It walks the heap (milliseconds), so it runs only when the process has grown.

``worker_max_memory_per_child`` (config) stays the backstop for what trimming cannot return.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import traceback
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Trim once the process is this much larger than it was before its first task.
GROWTH_BYTES = 64 * 1024 * 1024

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_baseline: int | None = None


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None)  # glibc only
    except OSError:
        return None


_malloc_trim = _load_trim()


def rss_bytes() -> int:
    """Resident size of this process (0 where /proc is not available)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def set_baseline() -> None:
    """Remember the size of a fresh pool process (called once it is initialised)."""
    global _baseline
    _baseline = rss_bytes()


def release() -> None:
    """Collect garbage and return the heap's free pages to the system."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)


def release_if_grown() -> None:
    """After a task: give memory back if the process grew well past its baseline (a cheap check otherwise)."""
    global _baseline
    rss = rss_bytes()
    if _baseline is None or rss == 0:
        _baseline = rss
        return
    if rss - _baseline > GROWTH_BYTES:
        release()
        log.debug("pool process trimmed from %d to %d MB", rss >> 20, rss_bytes() >> 20)


def clear_traceback(exc: BaseException | None) -> None:
    """Drop the local variables of the finished frames an exception (and the ones it chains) still holds."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__
