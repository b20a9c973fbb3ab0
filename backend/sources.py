"""Where a job's frames come from: a folder of numbered images, a video file, or a take folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from backend.imageio import (IMAGE_EXTS, VIDEO_EXTS, ImageError, decode_layer, numbered_images, read_image,
                             video_fps, video_frames)
from backend.ipc.take import Take


class SourceError(ValueError):
    """A source path that cannot be used; the message says why and what is accepted."""


@dataclass
class FrameSource:
    frames: list[int]
    size: tuple[int, int]          # (width, height)
    fps: float
    read: Callable[[int], dict[str, np.ndarray]]
    description: dict


def parse_range(text: str | None) -> tuple[int, int] | None:
    """'10-20' or '7' -> inclusive bounds; None -> everything."""
    if not text:
        return None
    try:
        lo, _, hi = text.partition("-")
        bounds = (int(lo), int(hi or lo))
    except ValueError:
        raise SourceError(f"frame range {text!r} is not FIRST-LAST (for example 1-48) or a single frame") from None
    if bounds[0] > bounds[1]:
        raise SourceError(f"frame range {text!r} ends before it starts")
    return bounds


def _as_color(image: np.ndarray) -> dict[str, np.ndarray]:
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    out = {"color": np.ascontiguousarray(image[:, :, :3])}
    if image.shape[2] == 4:
        out["alpha"] = image[:, :, 3].astype(np.float32) / 255.0
    return out


def open_source(path: str | Path, frame_range: tuple[int, int] | None = None) -> FrameSource:
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(f"{path} does not exist; give a folder of numbered images, a video file or a take folder")
    if path.is_dir() and (path / "take.json").is_file():
        source = _take_source(path)
    elif path.is_dir():
        source = _folder_source(path)
    elif path.suffix.lower() in VIDEO_EXTS:
        source = _video_source(path)
    else:
        raise SourceError(
            f"{path} is neither a folder nor a video; accepted videos: {', '.join(VIDEO_EXTS)}; "
            f"image sequences go in a folder ({', '.join(IMAGE_EXTS)})"
        )
    if frame_range is not None:
        kept = [f for f in source.frames if frame_range[0] <= f <= frame_range[1]]
        if not kept:
            raise SourceError(
                f"frame range {frame_range[0]}-{frame_range[1]} holds no frame of {path} "
                f"(it has {source.frames[0]}-{source.frames[-1]})"
            )
        source.frames = kept
    return source


def _folder_source(folder: Path) -> FrameSource:
    files = dict(numbered_images(folder))
    if not files:
        raise SourceError(f"{folder} holds no numbered images (name them like 0001.png, 0002.png ...)")
    first = read_image(next(iter(files.values())))

    def read(frame: int) -> dict[str, np.ndarray]:
        arrays = _as_color(read_image(files[frame]))
        if arrays["color"].shape != (first.shape[0], first.shape[1], 3):
            raise ImageError(f"{files[frame]} is {arrays['color'].shape[1]}x{arrays['color'].shape[0]}, "
                             f"but the sequence starts at {first.shape[1]}x{first.shape[0]}; resize it")
        return arrays

    return FrameSource(sorted(files), (first.shape[1], first.shape[0]), 24.0, read,
                       {"kind": "images", "path": str(folder)})


def _video_source(path: Path) -> FrameSource:
    """Frames 1..N of a video. Reading is sequential; asking for an earlier frame reopens the file."""
    count, size = 0, None
    for image in video_frames(path):
        count += 1
        size = size or (image.shape[1], image.shape[0])
    if not count:
        raise SourceError(f"{path} holds no frames OpenCV can decode; convert it to mp4 (H.264) or to PNGs")
    state: dict = {"iter": None, "next": 1}

    def read(frame: int) -> dict[str, np.ndarray]:
        if state["iter"] is None or frame < state["next"]:
            state["iter"], state["next"] = video_frames(path), 1
        for image in state["iter"]:
            state["next"] += 1
            if state["next"] - 1 == frame:
                return _as_color(image)
        raise ImageError(f"{path} has no frame {frame}")

    return FrameSource(list(range(1, count + 1)), size, video_fps(path), read, {"kind": "video", "path": str(path)})


def _take_source(root: Path) -> FrameSource:
    take = Take.open(root)
    info = take.info

    def read(frame: int) -> dict[str, np.ndarray]:
        arrays = {}
        for name, layer in info.layers.items():
            path = take.path(name, frame)
            if path.is_file():
                arrays[name] = decode_layer(layer, path.read_bytes())
        if "color" in arrays:
            arrays.update({k: v for k, v in _as_color(arrays["color"]).items() if k == "color"})
        return arrays

    frames = [f for f in info.frames if take.is_complete(f)]
    if not frames:
        raise SourceError(f"take {root} has no complete frame yet")
    return FrameSource(frames, (info.width, info.height), info.fps, read, {"kind": "take", "path": str(root),
                                                                           "stage": info.stage})


def iter_frames(source: FrameSource) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    for frame in source.frames:
        yield frame, source.read(frame)
