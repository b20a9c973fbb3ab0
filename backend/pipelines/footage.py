"""Input footage: a video file (phone mp4/mov ...) or a folder of numbered images, resized for the model.

Diffusion models want sides that are a multiple of 8 (the latent grid) or 64 (many UNets and ControlNets
at every level); `model_size` picks the nearest such size that keeps the aspect, under an optional limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from backend.imageio import IMAGE_EXTS, VIDEO_EXTS, ImageError, numbered_images, read_image, video_fps, video_frames


def model_size(width: int, height: int, multiple: int = 8, max_side: int | None = None) -> tuple[int, int]:
    """(w, h) rounded to `multiple`, aspect kept, the longer side at most `max_side`."""
    if width < 1 or height < 1:
        raise ValueError(f"a frame of {width}x{height} has no pixels")
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
    w = max(multiple, round(width * scale / multiple) * multiple)
    h = max(multiple, round(height * scale / multiple) * multiple)
    return w, h


def fit_frame(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.dtype != np.uint8:
        image = np.round(np.clip(image.astype(np.float32) / (65535.0 if image.dtype == np.uint16 else 1.0), 0, 1)
                         * 255).astype(np.uint8)
    if size is None or image.shape[1::-1] == tuple(size):
        return image
    smaller = size[0] < image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if smaller else cv2.INTER_CUBIC)


def footage_frames(path: str | Path, size: tuple[int, int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(frame number, RGB uint8) one at a time: from 1 for a video, the files' own numbers for a folder."""
    path = Path(path)
    if path.is_dir():
        files = numbered_images(path)
        if not files:
            raise ImageError(f"{path} holds no numbered images ({', '.join(IMAGE_EXTS)}, e.g. 0001.png)")
        for number, file in files:
            yield number, fit_frame(read_image(file), size)
    elif path.suffix.lower() in VIDEO_EXTS:
        for index, frame in enumerate(video_frames(path), start=1):
            yield index, fit_frame(frame, size)
    else:
        raise ImageError(f"{path} is neither a folder of images nor a video ({', '.join(VIDEO_EXTS)})")


def footage_fps(path: str | Path, default: float = 24.0) -> float:
    path = Path(path)
    return video_fps(path) if path.is_file() and path.suffix.lower() in VIDEO_EXTS else default
