"""The frame writer: writes overlap the next frame's work, announcements stay in order and after the write."""

import threading

import numpy as np
import pytest

from backend.frame_writer import FrameWriter


def test_frames_are_announced_in_order_only_once_written_and_writes_run_beside_the_caller():
    written, announced, threads = [], [], set()
    release = threading.Event()

    def write(frame, arrays):
        threads.add(threading.current_thread().name)
        if frame == 1:
            assert release.wait(5)  # frame 1's write is still running while the caller goes on
        written.append(frame)

    def on_written(frame):
        assert frame in written  # never announced before its files are there
        announced.append(frame)

    writer = FrameWriter(write, on_written)
    writer.submit(1, {"color": np.zeros((4, 4, 3), np.uint8)})
    assert announced == [] and written == []  # submit returned while the write waits
    release.set()
    for frame in (2, 3):
        writer.submit(frame, {})
    writer.flush()
    writer.close()
    assert announced == [1, 2, 3]
    assert threads == {n for n in threads if n.startswith("frame-writer")}


def test_a_failed_write_is_raised_in_the_callers_thread():
    def write(frame, arrays):
        if frame == 2:
            raise OSError("disk full")

    announced = []
    writer = FrameWriter(write, announced.append)
    writer.submit(1, {})
    writer.submit(2, {})
    with pytest.raises(OSError, match="disk full"):
        writer.submit(3, {})
    writer.close()
    assert announced == [1]


def test_closing_after_an_error_still_announces_the_frame_that_was_written():
    announced = []
    writer = FrameWriter(lambda frame, arrays: None, announced.append)
    writer.submit(7, {})
    writer.close()  # as run_job's `finally` does when the stage raised
    assert announced == [7]
