"""backend.ipc must load in Blender's Python (the numpy that Blender bundles, no OpenCV, no torch) and agree with the backend."""

import sys

import numpy as np

from backend.ipc import wire
from backend.ipc.digest import digest_arrays
from backend.ipc.take import Layer, Take, TakeInfo


def test_runs_on_blenders_numpy():
    # the point of this suite: the numpy each Blender bundles (1.x with Python 3.11 up to 5.0, 2.x with
    # Python 3.13 from 5.1), not the backend's
    expected = 1 if sys.version_info < (3, 13) else 2
    assert int(np.__version__.split(".")[0]) == expected


def test_wire_round_trip_keeps_arrays_exactly():
    depth = np.linspace(0, 10, 12, dtype=np.float32).reshape(3, 4)
    color = np.arange(3 * 4 * 3, dtype=np.uint8).reshape(3, 4, 3)
    frames = wire.encode("input", {"job_id": "j", "frame": 7}, {"color": color, "depth": depth})
    msg = wire.decode([bytes(f) for f in frames])
    assert msg.type == "input" and msg.get("frame") == 7
    assert np.array_equal(msg.arrays["color"], color) and np.array_equal(msg.arrays["depth"], depth)


def test_digest_is_stable_across_environments():
    # the same value the backend environment computes (numpy 2): job identity must not depend on the side
    arrays = {"color": np.arange(24, dtype=np.uint8).reshape(2, 4, 3)}
    assert digest_arrays(arrays) == "74f4b01e4863ac5dd006f4dd58bae4a7f90613e6"


def test_take_marks_a_frame_complete_only_with_every_layer(tmp_path):
    info = TakeInfo(frame_start=1, frame_end=2, width=4, height=3,
                    layers={"color": Layer("png8"), "alpha": Layer("png16")})
    take = Take.create(tmp_path / "t", info)
    take.write_file("color", 1, b"x")
    assert not take.is_complete(1)
    take.write_file("alpha", 1, b"y")
    assert take.is_complete(1) and take.missing_frames() == [2]
    assert Take.open(tmp_path / "t").info.layers["alpha"].format == "png16"
