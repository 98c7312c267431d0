"""Keep freed tensor memory in the process on glibc (the ``keep_freed_memory`` key).

A CPU training step allocates and frees the same large activation buffers every step. With
glibc's defaults, buffers above the (dynamic) mmap threshold are mapped and unmapped each
time, and free memory at the top of the heap is trimmed back to the system, so the next step
faults every page in again, zero-filled by the kernel: 20-30 thousand page faults per
full-size generator step at batch 64 (docs/RESULTS.md, "Speed"). Raising both thresholds
keeps that memory in the process for reuse. The cost is that the resident size stays at its
peak instead of shrinking between steps.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

__all__ = ["keep_freed_memory", "release_freed_memory"]

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap and are reused
_TRIM_THRESHOLD = (1 << 31) - 1  # largest int: never trim the heap top


@functools.lru_cache(maxsize=None)
def _glibc():
    """The C library with its two functions typed, or None off glibc. Looked up once:
    ``find_library`` runs ``ldconfig`` in a subprocess, and every run calls both functions."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # glibc has both; musl and others lack malloc_trim
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def release_freed_memory() -> bool:
    """Hand the memory glibc keeps (freed, not in use) back to the system now
    (``malloc_trim``). Called before a run starts its peak-memory count, so that one run's
    peak does not include what an earlier run in the same process freed. Returns False
    off glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse. Returns True if it was applied,
    False where the C library is not glibc (macOS, Windows, musl): nothing changes there."""
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    # the mmap threshold first: setting either turns off glibc's dynamic adjustment, and a
    # trim threshold alone would leave every block above 128 KiB mapped and unmapped per use
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
