"""Video footage decoded by Blender's own FFmpeg: an H.264 clip made here from known frames comes back
frame for frame (lossy, but each decoded frame is nearest its own source), cached, with clear errors."""

from __future__ import annotations

from pathlib import Path

import addon_fixtures  # noqa: F401  (puts the repository on sys.path, bpy first)
import bpy
import numpy as np
import pytest
from addon_fixtures import fresh_scene

from backend.ipc.imagefiles import png_bytes

from blender_addon.footage import footage_source, read_image
from blender_addon.headless.movie import encode_mp4
from blender_addon.scene.video import VideoError, VideoFrames, cache_folder

FRAMES, WIDTH, HEIGHT = 6, 64, 48


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    (folder / "frames").mkdir()
    for frame in range(1, FRAMES + 1):  # a block moving 8 px a frame over a background that darkens
        image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        image[:] = (40, 190 - 12 * frame, 60)
        image[12:36, 8 * frame - 4:8 * frame + 12] = (220, 120, 90)
        (folder / "frames" / f"{frame:04d}.png").write_bytes(png_bytes(image))
    video = encode_mp4(folder / "frames", folder / "walk.mp4", fps=24)
    return folder / "frames", video


def source(folder: Path, frame: int) -> np.ndarray:
    return read_image(folder / f"{frame:04d}.png")["color"].astype(np.float32)


def test_every_frame_comes_back_in_order_and_close_to_its_source(clip, tmp_path):
    frames_dir, video = clip
    fresh_scene()
    scenes_before = len(bpy.data.scenes)
    decoded = VideoFrames(video, tmp_path / "cache")
    assert decoded.frames == list(range(1, FRAMES + 1))
    assert decoded.size == (WIDTH, HEIGHT) and decoded.fps == pytest.approx(24.0)
    sources = [source(frames_dir, f) for f in decoded.frames]
    for frame in decoded.frames:
        pixels = read_image(decoded.path(frame))["color"].astype(np.float32)
        errors = [float(np.abs(pixels - s).mean()) for s in sources]
        assert int(np.argmin(errors)) + 1 == frame  # the right frame, not the first one again
        assert errors[frame - 1] < 6.0  # H.264 at high quality: a few levels
    assert len(bpy.data.scenes) == scenes_before  # the decode scene is gone from the artist's file


def test_a_decoded_frame_is_read_from_the_cache_afterwards(clip, tmp_path):
    _, video = clip
    decoded = VideoFrames(video, tmp_path / "cache")
    first = decoded.path(3)
    stamp = first.stat().st_mtime_ns
    assert decoded.path(3) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["0003.png"]  # only what was asked, no temporaries


def test_the_cache_folder_changes_when_the_video_does(clip, tmp_path):
    _, video = clip
    copy = tmp_path / "walk.mp4"
    copy.write_bytes(video.read_bytes())
    before = cache_folder(copy, tmp_path)
    copy.write_bytes(video.read_bytes() + b"\0")
    assert cache_folder(copy, tmp_path) != before


def test_footage_source_takes_a_video_with_its_own_rate_and_a_frame_range(clip, tmp_path):
    _, video = clip
    src = footage_source(video, 30.0, 2, 4, video_cache=tmp_path / "cache")
    assert src.frames == [2, 3, 4] and src.size == (WIDTH, HEIGHT) and src.fps == pytest.approx(24.0)
    assert src.description == {"kind": "video", "path": str(video)}
    assert src.read(2)["color"].shape == (HEIGHT, WIDTH, 3)


def test_a_file_that_is_not_a_video_and_a_missing_one_are_named(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    with pytest.raises(VideoError, match="notes.mp4"):
        VideoFrames(fake, tmp_path / "cache")
    with pytest.raises(VideoError, match="does not exist"):
        VideoFrames(tmp_path / "nowhere.mp4", tmp_path / "cache")
