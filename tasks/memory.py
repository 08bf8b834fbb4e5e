"""Handing memory back to the system after a big upload, in the prefork pool processes.

Parsing a large file makes millions of small objects. Once they are freed, glibc keeps most of that heap
mapped (freed chunks sit in its arenas below the top of the heap), so a pool process that once read a huge
or hostile file stays hundreds of MB larger for good: six failed 3 M-point files took a worker from 0.8 to
2 GB. ``malloc_trim`` returns those free pages; measured on such a file it takes a process from 150 MB back
to its 35 MB baseline. It walks the heap (milliseconds), so it runs only when the process has grown.

``worker_max_memory_per_child`` (config) stays the backstop for what trimming cannot return.

The other way round, a fresh pool process pays for memory it has never touched: its first task grows the heap,
and every new page is a page fault (zeroed by the kernel). glibc's default thresholds move with the process's
history (a freed block from ``mmap`` raises them), so what a task reuses and what it faults in anew changes
from one task to the next. :func:`tune_allocator` fixes them, and :func:`reserve_heap` grows the task thread's
heap once, at the start: a segments stage matching a 3,600-point ride took ~1,340 page faults as a fresh
process's first task and ~550 on each later one; with both, ~190 and ~15 (~1 ms less CPU on the first; its
wall time moved within the benchmark's noise).
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


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


_libc = _load_libc()
_malloc_trim: Callable[[int], int] | None = getattr(_libc, "malloc_trim", None)  # glibc only
_mallopt: Callable[[int, int], int] | None = getattr(_libc, "mallopt", None)  # glibc (musl: does nothing)

#: mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks of this size or more get pages of their own, handed back when freed (a big upload's arrays); smaller
#: ones come from the heap. glibc's own threshold starts at 128 KB and climbs, as blocks are freed, up to 32 MB.
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
#: Free memory at the top of the heap is kept up to this much (glibc: twice its current mmap threshold, up to
#: 64 MB): enough for a 1-hour activity's transient arrays, so the next task reuses pages instead of faulting.
TRIM_THRESHOLD_BYTES = 32 * 1024 * 1024
#: What :func:`reserve_heap` grows the heap by: the segments stage's first ride faulted ~5 MB in (1,340 pages), and
#: an upload's parse needs a few MB more.
HEAP_RESERVE_BYTES = 16 * 1024 * 1024


def tune_allocator() -> bool:
    """Fix glibc's mmap and trim thresholds for this process (see the module docstring); False where the C
    library has no mallopt or refuses a value."""
    if _mallopt is None:
        return False
    return bool(_mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def reserve_heap(size: int = HEAP_RESERVE_BYTES) -> None:
    """Grow the calling thread's heap by ``size`` bytes and free them again, so its next allocations find
    pages already mapped. Call it on the thread that runs the tasks (glibc gives other threads heaps of their
    own), after :func:`tune_allocator`: with glibc's default thresholds the blocks could be handed back at once."""
    block = min(size, MMAP_THRESHOLD_BYTES // 2)  # below the mmap threshold: from the heap
    blocks = [bytearray(block) for _ in range(max(1, size // block))]  # zero-filled: every page touched
    del blocks


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
