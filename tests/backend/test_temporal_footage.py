"""Input footage: image sequences and video files, resized to what the model accepts."""

import cv2
import numpy as np
import pytest

from backend.imageio import ImageError, write_image
from backend.pipelines.footage import footage_fps, footage_frames, model_size
from tests.backend.temporal_fixtures import Shot


def test_model_size_keeps_the_aspect_on_the_model_grid():
    assert model_size(1920, 1080, 8) == (1920, 1080)
    assert model_size(1920, 1080, 64) == (1920, 1088)
    w, h = model_size(1920, 1080, 64, max_side=1024)
    assert (w, h) == (1024, 576) and w % 64 == 0 and h % 64 == 0
    w, h = model_size(1080, 1920, 8, max_side=512)
    assert max(w, h) <= 512 and w % 8 == 0 and abs(w / h - 1080 / 1920) < 0.02


def test_an_image_sequence_streams_in_frame_order_at_model_size(tmp_path):
    shot = Shot(size=(100, 70), count=4)
    for i in (3, 1, 2, 4):
        write_image(tmp_path / f"plate_{i:04d}.png", shot.frame(i - 1))
    size = model_size(100, 70, 8)
    got = list(footage_frames(tmp_path, size))
    assert [n for n, _ in got] == [1, 2, 3, 4]
    assert all(image.shape == (size[1], size[0], 3) and image.dtype == np.uint8 for _, image in got)
    assert footage_fps(tmp_path) == 24.0


def test_a_video_file_streams_with_its_fps(tmp_path):
    path = tmp_path / "phone.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (128, 96))
    if not writer.isOpened():
        pytest.skip("this OpenCV build writes no mp4")
    shot = Shot(size=(128, 96), count=6, pan=(2, 0))
    for i in range(6):
        writer.write(shot.frame(i)[:, :, ::-1])
    writer.release()
    got = list(footage_frames(path, (64, 48)))
    assert [n for n, _ in got] == [1, 2, 3, 4, 5, 6]
    assert got[0][1].shape == (48, 64, 3)
    # lossy codec, but it is the same picture
    expected = cv2.resize(shot.frame(0), (64, 48), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(got[0][1].astype(np.float32) - expected).mean() < 12
    assert footage_fps(path) == pytest.approx(30.0)


def test_unreadable_footage_is_named(tmp_path):
    with pytest.raises(ImageError, match="neither a folder"):
        list(footage_frames(tmp_path / "notes.txt"))
    with pytest.raises(ImageError, match="no numbered images"):
        list(footage_frames(tmp_path))
