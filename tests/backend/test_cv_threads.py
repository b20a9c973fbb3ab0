"""OpenCV's pool makes room for our threads while any of them run, and gets its own setting back after."""

import os
import threading

import cv2
import pytest

from backend.pipelines.cv_threads import beside_our_threads

ORIGINAL = (os.cpu_count() or 1) + 5  # a setting no machine's share for the pool can equal


def test_the_pool_gets_the_cores_our_other_threads_leave_and_its_setting_back():
    cv2.setNumThreads(ORIGINAL)
    try:
        with beside_our_threads(2):
            assert cv2.getNumThreads() == max(1, (os.cpu_count() or 1) - 1)
        assert cv2.getNumThreads() == ORIGINAL
        with pytest.raises(RuntimeError):
            with beside_our_threads(2):
                raise RuntimeError("a failed frame")
        assert cv2.getNumThreads() == ORIGINAL
    finally:
        cv2.setNumThreads(-1)


def test_overlapping_users_restore_the_setting_only_when_the_last_leaves():
    cv2.setNumThreads(ORIGINAL)
    inside, leave = threading.Event(), threading.Event()

    def other_user():
        with beside_our_threads(2):
            inside.set()
            leave.wait(10)

    try:
        thread = threading.Thread(target=other_user)
        thread.start()
        inside.wait(10)
        with beside_our_threads(2):
            pass
        assert cv2.getNumThreads() == max(1, (os.cpu_count() or 1) - 1)  # the other user is still inside
        leave.set()
        thread.join(10)
        assert cv2.getNumThreads() == ORIGINAL
    finally:
        cv2.setNumThreads(-1)
