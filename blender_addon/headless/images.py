"""Reading and writing image files from Blender's Python (no OpenCV or PIL there): bpy loads, numpy holds.

Arrays are top row first, like every image outside Blender. Pixels are read as the file stores them
(the colour space is set to Non-Color first), so 8-bit PNG values come back exactly.
"""

from __future__ import annotations

import re
from pathlib import Path

import bpy
import numpy as np

from backend.ipc.imagefiles import png_bytes
from backend.ipc.take import atomic_write_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".webp")
_NUMBER = re.compile(r"(\d+)$")


class ImageReadError(ValueError):
    """A file Blender cannot read as an image; the message names it."""


def read_pixels(path: str | Path) -> np.ndarray:
    """H×W×4 float32 in [0, 1] as stored in the file, top row first."""
    path = Path(path)
    try:
        image = bpy.data.images.load(str(path), check_existing=False)
    except RuntimeError as e:
        raise ImageReadError(f"Blender cannot read {path}: {e}") from None
    try:
        image.colorspace_settings.name = "Non-Color"
        width, height = image.size
        if width == 0 or height == 0:
            raise ImageReadError(f"{path} has no pixels (is it an image?)")
        pixels = np.empty(width * height * 4, np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels.reshape(height, width, 4)[::-1]


def read_rgb8(path: str | Path) -> np.ndarray:
    return np.round(read_pixels(path)[:, :, :3] * 255.0).astype(np.uint8)


def read_grey(path: str | Path) -> np.ndarray:
    return np.ascontiguousarray(read_pixels(path)[:, :, 0])


def write_png(path: str | Path, array: np.ndarray) -> Path:
    atomic_write_bytes(Path(path), png_bytes(array))
    return Path(path)


def numbered_files(folder: str | Path) -> dict[int, Path]:
    """{frame: path} for files named like 0001.png or shot_0001.png; hidden and temporary files skipped."""
    found = {}
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        match = _NUMBER.search(path.stem)
        if match:
            found.setdefault(int(match.group(1)), path)
    return found
