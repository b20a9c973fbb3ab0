"""Reading ahead in a thread of its own: item k+1 is read (decoded) while the caller works on item k.

Image decoding (OpenCV), hashing (hashlib) and file writes release the GIL, so on two cores `dstage run`'s
reading of its inputs (decode in this thread; digest and store in the caller's) takes about half the time.
Items are read one after another, in order, by the one thread (a video source must be read sequentially), and
at most `depth` read items wait for the caller: memory stays flat however long the shot. A failed read is raised
in the caller's thread at that item; a caller that stops early stops the thread after the item it is reading.
With `readers` > 1 (items readable in any order: image files), that many threads decode side by side, the
items still coming in order, at most `depth + readers - 1` of them ahead.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_DONE = object()


def read_ahead(keys: Iterable[K], read: Callable[[K], V], depth: int = 2, readers: int = 1) -> Iterator[tuple[K, V]]:
    """(key, read(key)) for every key in order, each read in a background thread ahead of the caller."""
    return _side_by_side(keys, read, depth, readers) if readers > 1 else _one_reader(keys, read, depth)


def _side_by_side(keys: Iterable[K], read: Callable[[K], V], depth: int, readers: int) -> Iterator[tuple[K, V]]:
    pending: deque = deque()
    with ThreadPoolExecutor(readers, thread_name_prefix="read-ahead") as pool:  # on exit: the reads under way end
        try:
            for key in keys:
                pending.append((key, pool.submit(read, key)))
                if len(pending) >= depth + readers:
                    key, future = pending.popleft()
                    yield key, future.result()
            while pending:
                key, future = pending.popleft()
                yield key, future.result()
        finally:
            for _, future in pending:
                future.cancel()


def _one_reader(keys: Iterable[K], read: Callable[[K], V], depth: int) -> Iterator[tuple[K, V]]:
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
