"""glibc malloc settings: a multi-MB block comes from the reusable heap, not fresh mmap pages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rlbreakout.speed import allocator

#: Bigger than glibc's initial 128 KiB mmap threshold, smaller than the tuned 32 MiB one.
BLOCK_BYTES = 20_000_000

#: Runs in a fresh interpreter (the allocator's state is per process): prints the bytes
#: glibc holds in mmap-ed blocks while a BLOCK_BYTES array is alive.
PROBE = """
import ctypes, sys
import numpy as np
from rlbreakout.speed import allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
tuned = allocator.keep_freed_memory() if sys.argv[1] == "tuned" else False
before = libc.mallinfo2().hblkhd
block = np.ones({block}, dtype=np.uint8)
print(tuned, libc.mallinfo2().hblkhd - before)
"""


def mmapped_growth(mode: str) -> tuple[bool, int]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(block=BLOCK_BYTES), mode],
                          capture_output=True, text=True, check=True)
    tuned, growth = done.stdout.split()
    return tuned == "True", int(growth)


@pytest.mark.skipif(not allocator.uses_glibc(), reason="mallopt's thresholds are glibc's")
def test_a_big_block_comes_from_the_heap_once_tuned() -> None:
    tuned, growth = mmapped_growth("tuned")
    assert tuned
    assert growth < BLOCK_BYTES  # served from the heap arena, kept for reuse after free
    untouched, default_growth = mmapped_growth("default")
    assert not untouched
    assert default_growth >= BLOCK_BYTES  # glibc's default: a fresh mmap, unmapped again on free


def test_does_nothing_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    assert not allocator.uses_glibc()
    assert allocator.keep_freed_memory() is False
