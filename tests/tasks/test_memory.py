"""tasks.memory's allocator tuning: after reserve_heap, a task's allocations reuse pages instead of faulting them in.

Each case runs in a fresh interpreter: the tuning is process-wide and would change the test process's allocator.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Allocate and touch 12 MB in blocks below the mmap threshold (the sizes of a task's arrays), counting the
#: page faults that takes.
_PROBE = """
import resource, sys
from tasks import memory
tuned = memory.tune_allocator()
if sys.argv[1] == "reserve":
    memory.reserve_heap(16 * 1024 * 1024)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
blocks = [bytearray(1024 * 1024) for _ in range(12)]
print(int(tuned), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    return out[0] == "1", int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_reserved_heap_serves_allocations_without_page_faults() -> None:
    tuned, cold = _faults("cold")
    assert tuned
    assert cold > 2_000  # 12 MB is 3,072 pages: each is faulted in on first touch
    _, reserved = _faults("reserve")
    assert reserved < 300, reserved


def test_without_mallopt_the_tuning_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks import memory

    monkeypatch.setattr(memory, "_mallopt", None)
    assert memory.tune_allocator() is False
    memory.reserve_heap(1024)  # harmless anywhere: allocates and frees
