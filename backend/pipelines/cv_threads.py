"""OpenCV's thread pool made room for threads of our own, process-wide, for as long as any of them run.

OpenCV parallelizes one call over a pool of its own; where our code already runs OpenCV calls in several
threads (the propagator's two keyframe sides), that pool's workers spin on cores our threads need. Inside
`beside_our_threads(n)`, a call gets the cores our other n-1 threads leave (while one caller has the pool, the
others' calls run on themselves alone); on 2 cores that is none, and each call runs on its caller only.
Hold it over a whole unit of work (a frame), not each parallel call: a pool worker spins a while after a call
before it sleeps, so setting it back in between would put the spinning worker beside the next parallel call.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

import cv2

_lock = threading.Lock()
_users = 0
_saved = 0  # OpenCV's own setting, restored when the last user leaves


@contextmanager
def beside_our_threads(ours: int):
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = cv2.getNumThreads()
            cv2.setNumThreads(max(1, (os.cpu_count() or 1) - ours + 1))
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                cv2.setNumThreads(_saved)
