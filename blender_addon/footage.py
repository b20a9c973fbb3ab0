"""Footage frames as arrays, read with Blender's own image loader (Blender's Python has no OpenCV)."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from .jobs.driver import FrameSource
from .jobs.frames import clip_range, is_video, numbered_images, sequence_folder


def read_image(path: str | Path) -> dict[str, np.ndarray]:
    """{"color": HxWx3 uint8, "alpha": HxW float32 (only when the file has alpha)}, top row first."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        image.colorspace_settings.name = "Non-Color"  # the file's values as they are, no view transform
        width, height = image.size
        if width == 0 or height == 0:
            raise ValueError(f"{path} could not be read as an image")
        pixels = np.empty(width * height * 4, np.float32)
        image.pixels.foreach_get(pixels)
        has_alpha = image.alpha_mode != "NONE" and image.depth in (32, 64, 128) and image.channels == 4
        is_float = image.is_float
    finally:
        bpy.data.images.remove(image)
    rgba = pixels.reshape(height, width, 4)[::-1]
    if is_float:  # linear float files (EXR): to display values, as the backend's 8-bit inputs are
        rgb = np.clip(rgba[:, :, :3], 0.0, 1.0)
        rgb = np.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * np.power(rgb, 1 / 2.4) - 0.055)
    else:
        rgb = rgba[:, :, :3]
    out = {"color": np.ascontiguousarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8))}
    if has_alpha:
        out["alpha"] = np.ascontiguousarray(rgba[:, :, 3])
    return out


def footage_source(path: str | Path, fps: float, first: int | None = None, last: int | None = None, *,
                   video_cache: str | Path) -> FrameSource:
    """A video file (decoded once into `video_cache`) or an image sequence, between `first` and `last`.
    `fps` is the image sequence's rate; a video keeps its own."""
    if is_video(path):
        return video_source(path, video_cache, first, last)
    return sequence_source(path, fps, first, last)


def video_source(path: str | Path, cache_root: str | Path, first: int | None = None,
                 last: int | None = None) -> FrameSource:
    """The frames of a video (1..N) between `first` and `last`, decoded on first read into a cache folder
    under `cache_root`, so the driver's second pass and later imports read PNGs."""
    from .scene.video import VideoFrames, cache_folder

    path = Path(path)
    video = VideoFrames(path, cache_folder(path, Path(cache_root)))
    frames = clip_range(video.frames, first, last)

    def read(frame: int) -> dict[str, np.ndarray]:
        return {"color": read_image(video.path(frame))["color"]}

    return FrameSource(frames, video.size, video.fps, read, {"kind": "video", "path": str(path)})


def sequence_source(path: str | Path, fps: float, first: int | None = None, last: int | None = None) -> FrameSource:
    """The frames of an image sequence (a folder, or one image of it) between `first` and `last`."""
    files = numbered_images(sequence_folder(path))
    frames = clip_range(sorted(files), first, last)
    probe = read_image(files[frames[0]])["color"]
    size = (probe.shape[1], probe.shape[0])

    def read(frame: int) -> dict[str, np.ndarray]:
        arrays = read_image(files[frame])
        shape = arrays["color"].shape
        if (shape[1], shape[0]) != size:
            raise ValueError(f"{files[frame].name} is {shape[1]}x{shape[0]} but the sequence is "
                             f"{size[0]}x{size[1]}; every frame must have the same size")
        return {"color": arrays["color"]}  # stages get colour; a source matte would change the digest per loader

    folder = files[frames[0]].parent
    return FrameSource(frames, size, fps, read, {"kind": "images", "path": str(folder)})



def take_source(take_dir: str | Path, layers: tuple[str, ...] | None = None) -> FrameSource:
    """Every layer of a take (rendered passes) as backend inputs, in the values the take means:
    colour and maps as uint8, depth in metres, alpha 0..1 (scene/frames.py reads them)."""
    from .ipc import Take
    from .scene.frames import read_frame

    take = Take.open(take_dir)
    info = take.info
    if "color" not in info.layers:
        raise ValueError(f"{take.root} has no colour layer (it has {sorted(info.layers)}); render colour too")

    names = [name for name in info.layers if layers is None or name in layers]

    def read(frame: int) -> dict[str, np.ndarray]:
        out = {}
        for name in names:
            values = read_frame(take, name, frame)
            if name == "alpha" and values.dtype == np.uint8:
                values = values.astype(np.float32) / 255.0
            out[name] = np.ascontiguousarray(values)
        return out

    return FrameSource(list(info.frames), (info.width, info.height), info.fps, read,
                       {"kind": "take", "path": str(take.root), "stage": info.stage})
