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
        for frame in (3, 4, 5):  # raised at a later submit (frames are in flight two at a time) ...
            writer.submit(frame, {})
        writer.flush()  # ... or, at the latest, here
    writer.close()
    assert announced[0] == 1 and 2 not in announced


def test_up_to_two_frames_are_in_flight_and_a_third_waits_for_the_first():
    release, started = threading.Event(), []

    def write(frame, arrays):
        started.append(frame)
        assert release.wait(5)

    announced = []
    writer = FrameWriter(write, announced.append)
    writer.submit(1, {})
    writer.submit(2, {})  # frame 1 is still being written: the caller is not held
    assert announced == []
    waiter = threading.Thread(target=writer.submit, args=(3, {}))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # the third waits for the first
    release.set()
    waiter.join(5)
    writer.flush()
    writer.close()
    assert announced == [1, 2, 3] and started == [1, 2, 3]


def test_closing_after_an_error_still_announces_the_frame_that_was_written():
    announced = []
    writer = FrameWriter(lambda frame, arrays: None, announced.append)
    writer.submit(7, {})
    writer.close()  # as run_job's `finally` does when the stage raised
    assert announced == [7]


def test_run_job_hands_each_stored_frame_to_on_stored_in_the_writer_thread_before_announcing_it(tmp_path):
    from backend.jobs import JobCallbacks, identify, run_job
    from backend.store import JobSpec, Store
    from tests.backend.spine_fixtures import FrameSet

    frames = FrameSet(4, size=64)
    store = Store(tmp_path)
    for frame, arrays in frames.arrays.items():
        store.put_input(frames.digests[frame], arrays)
    spec = JobSpec("matte", {}, sorted(frames.digests.items()), frames.size)
    identify(spec)
    store.save_job(spec)
    take_root = store.job_dir(spec.job_id) / "take"
    events = []

    def on_stored(frame):
        files = [take_root / name / f"{frame:04d}.png" for name in ("alpha",)]
        events.append(("stored", frame, threading.current_thread().name, all(f.is_file() for f in files)))

    def on_frame(frame):
        events.append(("announced", frame, threading.current_thread().name, None))

    run_job(store, spec, JobCallbacks(on_frame=on_frame, on_stored=on_stored))
    main = threading.current_thread().name
    # two frames may be in flight, so the next frame can be stored before this one is announced: the
    # properties are the order of each kind and that no frame is announced before it is stored
    order = list(frames.arrays)
    assert [f for kind, f, *_ in events if kind == "stored"] == order
    assert [f for kind, f, *_ in events if kind == "announced"] == order
    kinds = [e[:2] for e in events]
    assert all(kinds.index(("stored", f)) < kinds.index(("announced", f)) for f in order)
    assert all(e[2].startswith("frame-writer") and e[3] for e in events if e[0] == "stored")
    assert all(e[2] == main for e in events if e[0] == "announced")
