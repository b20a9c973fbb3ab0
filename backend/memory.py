"""Keep freed frame buffers in the backend process instead of handing them back to the kernel.

Every stage allocates and frees tens of megabytes a frame (warped layers, remap coordinates, weights). glibc
gives freed blocks of 128 KB and more back to the kernel (munmap, heap trimming), and the next frame faults the
same pages in again, zeroed: bench/propagate.py measured 3,000 page faults and 20 ms of kernel time a 960x540
frame, with the propagator's two threads contending for the process's memory map. `keep_freed_memory` raises
glibc's two thresholds so blocks up to 32 MB (its ceiling: a 1080p float colour layer) come from the heap and
stay there for the next frame, and gives every thread the one (main) arena: a thread's own arena lives in 64 MB
heaps that glibc unmaps whenever one empties, whatever the trim threshold, so a thread whose frame's blocks spill
into a second heap faults them all in again every frame (the guided propagator, once it stopped sampling a colour
layer it did not use: 1,800-2,300 faults a 960x540 frame; none with one arena). Large blocks are few a frame, so
the one arena's lock cost nothing measurable end to end. Memory stays flat: each frame reuses the blocks the last
one freed; the process keeps its peak instead of returning it between frames.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit; a larger value is refused
TRIM_THRESHOLD = 2**31 - 1             # never trim the heap's top


def keep_freed_memory() -> bool:
    """Whether the process now keeps freed blocks (Linux with glibc); elsewhere it changes nothing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return (bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
            and bool(mallopt(M_ARENA_MAX, 1)))
