"""Footage frames as arrays, read with Blender's own image loader (Blender's Python has no OpenCV)."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from .jobs.driver import FrameSource
from .jobs.frames import clip_range, numbered_images, sequence_folder


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


def read_values(path: str | Path) -> np.ndarray:
    """An image's stored values as float32 HxWxC (C = the file's channels), top row first, no colour
    transform: 16-bit PNG depth comes back as v/65535, EXR as written."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        image.colorspace_settings.name = "Non-Color"
        width, height = image.size
        pixels = np.empty(width * height * 4, np.float32)
        image.pixels.foreach_get(pixels)
        channels = image.channels
    finally:
        bpy.data.images.remove(image)
    return np.ascontiguousarray(pixels.reshape(height, width, 4)[::-1, :, :channels])


def take_source(take_dir: str | Path) -> FrameSource:
    """Every layer of a take as backend inputs: colour as uint8 RGB, depth in its units (float32),
    alpha as float32 0..1, other passes (normal, lineart, pose, segmentation ...) as uint8 RGB."""
    from .ipc import Take

    take = Take.open(take_dir)
    info = take.info
    if "color" not in info.layers:
        raise ValueError(f"{take.root} has no colour layer (it has {sorted(info.layers)}); render colour too")

    def read(frame: int) -> dict[str, np.ndarray]:
        out = {}
        for name, layer in info.layers.items():
            values = read_values(take.path(name, frame))
            if name == "depth":
                grey = values[:, :, 0]
                if layer.format == "png16" and layer.near is not None and layer.far is not None:
                    grey = layer.near + grey * (layer.far - layer.near)
                out[name] = np.ascontiguousarray(grey, np.float32)
            elif name == "alpha":
                out[name] = np.ascontiguousarray(values[:, :, 0])
            elif name == "color" and layer.format == "exr":
                out[name] = read_image(take.path(name, frame))["color"]
            else:
                rgb = values[:, :, :3] if values.shape[2] >= 3 else np.repeat(values[:, :, :1], 3, axis=2)
                out[name] = np.ascontiguousarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
        return out

    return FrameSource(list(info.frames), (info.width, info.height), info.fps, read,
                       {"kind": "take", "path": str(take.root), "stage": info.stage})
