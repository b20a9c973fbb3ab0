"""The propagate stage's next gap prepared in a thread (backend/stages/gap_ahead.py): the same take as gaps
prepared in order, errors raised in the stage's thread, the thread stopped when the stage stops."""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.params import parse_params
from backend.pipelines.preview import preview_grade
from backend.pipelines.propagate import Keyframe, PropagateParams, Propagator
from backend.stages.base import get_stage
from tests.backend.temporal_fixtures import Shot, context

sys.path.insert(0, str(Path(__file__).parent))
from spine_fixtures import assert_no_corrupt_files, dstage, frame_files, kill_dstage_mid_run, write_frames  # noqa: E402

torch.set_num_threads(1)
KEYS = (0, 6, 12)


@pytest.fixture(scope="module")
def shot():
    return Shot(size=(128, 96), count=13, pan=(1.5, 0.5), disc_speed=2.0, disc_radius=22, disc_start=40)


def keyframe(shot, k):
    return Keyframe(k, shot.frame(k), {"color": preview_grade(shot.frame(k))})


def test_a_gap_prepared_beside_the_frames_gives_the_same_frames(shot):
    """Gap 2's flows and keyframe view made in another thread while gap 1's frames are rebuilt (the DIS objects
    and views the two use must be apart) give exactly the frames of gaps prepared one after the other."""
    keys = [keyframe(shot, k) for k in KEYS]
    serial = Propagator(PropagateParams())
    expected = []
    for prev, nxt in zip(keys, keys[1:]):
        serial.prepare_gap(prev, nxt, (shot.frame(t) for t in range(prev.frame + 1, nxt.frame)))
        expected += [serial.frame(t, shot.frame(t), prev, nxt)["color"] for t in range(prev.frame + 1, nxt.frame)]

    ahead = Propagator(PropagateParams())
    ahead.prepare_gap(keys[0], keys[1], (shot.frame(t) for t in range(1, KEYS[1])))
    with ThreadPoolExecutor(1) as pool:
        later = pool.submit(ahead.gap_ahead, keys[1], keys[2], (shot.frame(t) for t in range(KEYS[1] + 1, KEYS[2])))
        got = [ahead.frame(t, shot.frame(t), keys[0], keys[1])["color"] for t in range(1, KEYS[1])]
        flows, view = later.result()
    ahead.use_gap_ahead(KEYS[1], KEYS[2], flows, view)
    got += [ahead.frame(t, shot.frame(t), keys[1], keys[2])["color"] for t in range(KEYS[1] + 1, KEYS[2])]
    assert len(got) == len(expected) == 10
    for a, b in zip(got, expected):
        assert np.array_equal(a, b)


def run_stage(ctx, values):
    stage = get_stage("propagate")
    return stage.run(parse_params(stage.Params, values), ctx)


def test_the_stage_gives_the_take_of_gaps_prepared_in_order(shot, tmp_path):
    """The stage (gaps ahead) against the same propagator driven gap by gap in one thread."""
    out = dict(run_stage(context(shot, tmp_path), {"key_interval": 6}))
    keys = [keyframe(shot, k) for k in KEYS]
    serial = Propagator(PropagateParams())
    for prev, nxt in zip(keys, keys[1:]):
        serial.prepare_gap(prev, nxt, (shot.frame(t) for t in range(prev.frame + 1, nxt.frame)))
        for t in range(prev.frame + 1, nxt.frame):
            assert np.array_equal(out[t + 1]["color"], serial.frame(t, shot.frame(t), prev, nxt)["color"])


def test_a_failed_read_ahead_reaches_the_stage_at_its_gap(shot, tmp_path):
    """Frame 9 (inside the second gap, read ahead in the thread) cannot be read: the first gap's frames come out,
    then the read's own error, in the stage's thread, naming the frame."""
    ctx = context(shot, tmp_path)
    inner = ctx.read_input

    def read(f):
        if f == 9 and threading.current_thread().name.startswith("read-ahead") and planned.is_set():
            raise OSError(f"frame {f}: input file unreadable (disk error)")
        return inner(f)

    planned = threading.Event()
    ctx.read_input = read
    frames = run_stage(ctx, {"key_interval": 6})
    done = [next(frames)[0]]
    planned.set()  # the plan read every frame already; from here a read of frame 9 fails
    with pytest.raises(OSError, match="frame 9: input file unreadable"):
        for frame, _ in frames:
            done.append(frame)
    assert done == [1, 2, 3, 4, 5, 6, 7]  # the first gap's frames and its closing keyframe, nothing after


def test_stopping_the_stage_stops_the_gap_thread(shot, tmp_path):
    """A stage closed mid-run (a cancel, a client gone) leaves no gap thread reading on."""
    ctx = context(shot, tmp_path)
    frames = run_stage(ctx, {"key_interval": 6})
    next(frames)
    next(frames)
    assert any(t.name.startswith("gap-ahead") for t in threading.enumerate())
    frames.close()
    assert not any(t.name.startswith("gap-ahead") for t in threading.enumerate())


def test_a_kill_mid_run_loses_no_stored_frame_and_resumes_to_the_same_take(tmp_path):
    """`dstage run propagate` killed (-9) while a gap is prepared ahead: the take's frames are whole, and the
    resumed run (reusing the gaps' flows kept so far) ends with the bytes of an uninterrupted run."""
    folder = write_frames(tmp_path / "in", 90, 128, seed=5)
    out, store = tmp_path / "take", tmp_path / "store"
    args = ["run", "propagate", "--in", str(folder), "--out", str(out), "--store", str(store), "--set", "key_interval=6"]
    kill_dstage_mid_run(args, out / "color", 30, 120, "30 frames in the take")
    partial = frame_files(out)
    assert 0 < len(partial) < 90, "the kill should leave a partial take"
    assert_no_corrupt_files(out)
    assert_no_corrupt_files(store)
    result = dstage(*args)
    assert result.returncode == 0, result.stderr
    assert "(resumed)" in result.stderr
    got = frame_files(out)
    assert all(got[name] == data for name, data in partial.items()), "a finished frame changed on resume"
    ref = tmp_path / "ref"
    result = dstage(*args[:4], "--out", str(ref), "--store", str(tmp_path / "store_ref"), *args[8:])
    assert result.returncode == 0, result.stderr
    assert got == frame_files(ref)
