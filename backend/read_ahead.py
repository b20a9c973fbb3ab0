"""Reading ahead in a thread of its own: item k+1 is read (decoded) while the caller works on item k.

Image decoding (OpenCV), hashing (hashlib) and file writes release the GIL, so on two cores `dstage run`'s
reading of its inputs (decode in this thread; digest and store in the caller's) takes about half the time.
Items are read one after another, in order, by the one thread (a video source must be read sequentially), and
at most `depth` read items wait for the caller: memory stays flat however long the shot. A failed read is raised
in the caller's thread at that item; a caller that stops early stops the thread after the item it is reading.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_DONE = object()


def read_ahead(keys: Iterable[K], read: Callable[[K], V], depth: int = 2) -> Iterator[tuple[K, V]]:
    """(key, read(key)) for every key in order, each read in a background thread ahead of the caller."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for key in keys:
                if stop.is_set() or not put((key, read(key), None)):
                    return
        except BaseException as e:  # handed to the caller, raised there
            put((None, None, e))
            return
        put(_DONE)

    thread = threading.Thread(target=reader, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            key, value, error = item
            if error is not None:
                raise error
            yield key, value
    finally:
        stop.set()
        thread.join()
