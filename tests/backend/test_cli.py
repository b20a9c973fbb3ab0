"""`dstage run` embedded (no server): on a folder and on a video, its progress, resuming after a kill,
and a clear non-zero exit for each kind of bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from spine_fixtures import (SCREEN_RGB, FrameSet, assert_no_corrupt_files, dstage, frame_files,  # noqa: E402
                            green_frame, kill_dstage_mid_run, reference_take, write_frames)


def read_alpha(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint16, path
    return image.astype(np.float32) / 65535.0


def subject_mask(index: int, size: int) -> np.ndarray:
    """Where green_frame put its box (a pixel inside the box's border, to be safe from codec blur)."""
    frame = green_frame(index, size)
    screen = np.abs(frame.astype(int) - SCREEN_RGB).sum(axis=2) < 60
    return ~screen


def test_run_on_a_folder(tmp_path):
    folder = write_frames(tmp_path / "in", 6, 96, seed=3)
    out = tmp_path / "take"
    result = dstage("run", "matte", "--in", str(folder), "--out", str(out), "--store", str(tmp_path / "store"))
    assert result.returncode == 0, result.stderr
    assert f"6 frames of matte in {out}" in result.stdout
    assert "6/6" in result.stderr  # the progress bar reached the end
    info = json.loads((out / "take.json").read_text())
    assert (info["frame_start"], info["frame_end"], info["width"], info["height"]) == (1, 6, 96, 96)
    assert info["source"]["kind"] == "images"
    for i in range(1, 7):
        alpha = read_alpha(out / "alpha" / f"{i:04d}.png")
        subject = subject_mask(i, 96)
        assert alpha[subject].mean() > 0.95 and alpha[~subject].mean() < 0.05
    # the same pixels through the job runner give the same files
    assert frame_files(out) == frame_files(reference_take(tmp_path / "ref", FrameSet(6, 96, seed=3)))


def test_run_on_a_video(tmp_path):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (96, 96))
    assert writer.isOpened()
    for i in range(1, 9):
        writer.write(np.ascontiguousarray(green_frame(i, 96)[:, :, ::-1]))
    writer.release()
    out = tmp_path / "take"
    result = dstage("run", "matte", "--in", str(video), "--out", str(out), "--store", str(tmp_path / "store"))
    assert result.returncode == 0, result.stderr
    info = json.loads((out / "take.json").read_text())
    assert (info["frame_start"], info["frame_end"], info["fps"]) == (1, 8, 12.0)
    assert info["source"] == {"kind": "video", "path": str(video)}
    for i in range(1, 9):
        alpha = read_alpha(out / "alpha" / f"{i:04d}.png")
        inner = cv2.erode(subject_mask(i, 96).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        outer = cv2.erode((~subject_mask(i, 96)).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        assert alpha[inner].mean() > 0.9 and alpha[outer].mean() < 0.1, f"frame {i}: the lossy video keyed badly"


def test_an_interrupted_run_resumes_with_the_same_bytes(tmp_path):
    count, size = 200, 128
    folder = write_frames(tmp_path / "in", count, size, seed=4)
    out, store = tmp_path / "take", tmp_path / "store"
    args = ["run", "matte", "--in", str(folder), "--out", str(out), "--store", str(store)]
    kill_dstage_mid_run(args, out / "alpha", 3, 120, "the first frames in the take")
    partial = frame_files(out)
    assert 0 < len(partial) < 2 * count, "the kill should leave a partial take"
    assert_no_corrupt_files(out)
    assert_no_corrupt_files(store)
    result = dstage("run", "matte", "--in", str(folder), "--out", str(out), "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert "(resumed)" in result.stderr
    got = frame_files(out)
    assert len(got) == 2 * count
    assert all(got[name] == data for name, data in partial.items()), "a finished frame changed on resume"
    assert got == frame_files(reference_take(tmp_path / "ref", FrameSet(count, size, seed=4)))


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return write_frames(tmp_path_factory.mktemp("cli") / "in", 2, 64)


@pytest.mark.parametrize("args, words", [
    (["--in", "{tmp}/nowhere"], ["nowhere", "does not exist", "folder of numbered images"]),
    (["--stage", "mattte"], ["unknown stage 'mattte'", "available", "matte"]),
    (["--set", "key.tolerance=abc"], ["key.tolerance", "expected a number", "'abc'"]),
    (["--set", "key.tolerance=7"], ["key.tolerance", "above the maximum 1.0"]),
    (["--set", "key.screen=purple"], ["key.screen", "'purple'", "green, blue, custom"]),
    (["--set", "colour=red"], ["colour", "unknown parameter", "method"]),
    (["--set", "tolerance"], ["--set 'tolerance'", "KEY=VALUE"]),
    (["--frames", "9-3"], ["9-3", "ends before it starts"]),
], ids=["missing-input", "unknown-stage", "bad-value", "out-of-range", "bad-choice", "unknown-param",
        "no-equals", "bad-range"])
def test_bad_input_exits_non_zero_with_a_clear_message(tmp_path, frames, args, words, capsys):
    """In this process (`main` returns the exit status) to spare a Python start per case; the next test
    checks the same through a real process."""
    from backend.cli import main

    stage = "matte"
    if args[0] == "--stage":
        stage, args = args[1], args[2:]
    if "--in" not in args:
        args = ["--in", str(frames), *args]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    status = main(["run", stage, *args, "--out", str(tmp_path / "take"), "--store", str(tmp_path / "store")])
    stderr = capsys.readouterr().err
    assert status == 2, stderr
    message = stderr.strip().splitlines()[-1]
    assert message.startswith("dstage: ")
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"
    assert not (tmp_path / "take").exists(), "a refused run must not create its take"


def test_the_process_exit_status_is_the_error_status(tmp_path, frames):
    result = dstage("run", "matte", "--in", str(frames), "--out", str(tmp_path / "take"), "--store",
                    str(tmp_path / "store"), "--set", "refine.nonsense=1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("dstage: stage matte: refine.nonsense: unknown parameter")
