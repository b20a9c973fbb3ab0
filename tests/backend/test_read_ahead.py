"""Reading ahead: items come in order, read in another thread, never more than `depth` ahead; errors and early
stops reach the caller."""

import threading
import time

import pytest

from backend.read_ahead import read_ahead


def test_items_come_in_order_read_in_another_thread_at_most_depth_ahead():
    read, threads = [], set()

    def load(key):
        threads.add(threading.current_thread().name)
        read.append(key)
        return key * 10

    seen = []
    for key, value in read_ahead(range(20), load, depth=2):
        time.sleep(0.01)  # the reader runs ahead meanwhile, as far as the queue lets it
        # read: what the caller holds, what waits in the queue (2), and the one read but not yet queued
        assert len(read) - len(seen) <= 4
        seen.append((key, value))
    assert seen == [(k, k * 10) for k in range(20)]
    assert threads == {"read-ahead"}


def test_a_caller_that_stops_early_stops_the_reader():
    read = []

    def load(key):
        read.append(key)
        return key

    for key, _ in read_ahead(range(1000), load, depth=2):
        if key == 5:
            break
    # the generator is closed on leaving the loop: the reader thread has ended, a few items past 5 at most
    assert not any(t.name == "read-ahead" and t.is_alive() for t in threading.enumerate())
    assert len(read) <= 5 + 1 + 4


def test_readers_side_by_side_keep_the_order_and_stay_a_few_items_ahead():
    """readers=2 (image files): two threads decode at once, yet items come in order, at most depth+readers ahead."""
    read, threads, at_once, busy = [], set(), [0], [0]
    lock = threading.Lock()

    def load(key):
        with lock:
            busy[0] += 1
            at_once[0] = max(at_once[0], busy[0])
            threads.add(threading.current_thread().name)
            read.append(key)
        time.sleep(0.01 if key % 3 else 0.03)  # uneven reads finish out of order
        with lock:
            busy[0] -= 1
        return key * 10

    seen = []
    for key, value in read_ahead(range(30), load, depth=2, readers=2):
        assert len(read) - len(seen) <= 4
        seen.append((key, value))
    assert seen == [(k, k * 10) for k in range(30)]
    assert len(threads) == 2 and at_once[0] == 2


@pytest.mark.parametrize("readers", [1, 2])
def test_side_by_side_errors_and_early_stops_reach_the_caller(readers):
    def load(key):
        if key == 7:
            raise OSError("frame 7 is damaged")
        return key

    got = []
    with pytest.raises(OSError, match="frame 7 is damaged"):
        for key, _ in read_ahead(range(100), load, readers=readers):
            got.append(key)
    assert got == list(range(7))
    for key, _ in read_ahead(range(1000), lambda k: k, readers=readers):
        if key == 5:
            break
    assert not any(t.name.startswith("read-ahead") and t.is_alive() for t in threading.enumerate())
