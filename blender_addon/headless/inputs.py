"""What a backend job reads, frame by frame: a folder of numbered images, or a take a previous stage wrote.

Each frame is read only when the job uploads it (frames stream; nothing holds the whole shot).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from backend.ipc.take import Take
from blender_addon.headless.images import numbered_files, read_grey, read_pixels, read_rgb8


RGB_LAYERS = ("color", "albedo", "normal")


@dataclass
class FrameInput:
    frames: list[int]
    size: tuple[int, int]            # (width, height)
    fps: float
    read: Callable[[int], dict[str, np.ndarray]]
    description: dict


def footage_input(folder: str | Path, fps: float = 24.0) -> FrameInput:
    """A folder of numbered images (0001.png ...): colour, plus alpha when the images have it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"footage folder {folder} does not exist; give a folder of numbered images")
    files = numbered_files(folder)
    if not files:
        raise FileNotFoundError(f"{folder} holds no numbered images (name them 0001.png, 0002.png ...)")
    first = read_pixels(files[min(files)])

    def read(frame: int) -> dict[str, np.ndarray]:
        pixels = read_pixels(files[frame])
        if pixels.shape != first.shape:
            raise ValueError(f"{files[frame].name} is {pixels.shape[1]}x{pixels.shape[0]} but the footage starts "
                             f"at {first.shape[1]}x{first.shape[0]}; resize it")
        return {"color": np.round(pixels[:, :, :3] * 255.0).astype(np.uint8)}

    return FrameInput(sorted(files), (first.shape[1], first.shape[0]), fps, read,
                      {"kind": "images", "path": str(folder)})


def take_input(take_dir: str | Path, layers: tuple[str, ...] = ("color", "alpha")) -> FrameInput:
    """A take's frames as a job input: colour layers (color, albedo, normal) as uint8 RGB, grey layers (alpha,
    depth) as float32 in [0, 1]."""
    take = Take.open(take_dir)
    info = take.info
    wanted = [name for name in layers if name in info.layers]

    def read(frame: int) -> dict[str, np.ndarray]:
        arrays = {}
        for name in wanted:
            path = take.path(name, frame)
            arrays[name] = read_rgb8(path) if name in RGB_LAYERS else read_grey(path)
        return arrays

    return FrameInput(list(info.frames), (info.width, info.height), info.fps, read,
                      {"kind": "take", "path": str(take_dir), "stage": info.stage})


def merged_input(*inputs: FrameInput) -> FrameInput:
    """One input whose frames carry the layers of all `inputs` (the first one's size and description; the
    frames they share). A later input's layer of the same name wins."""
    frames = sorted(set.intersection(*(set(i.frames) for i in inputs)))

    def read(frame: int) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for item in inputs:
            arrays.update(item.read(frame))
        return arrays

    first = inputs[0]
    return FrameInput(frames, first.size, first.fps, read, dict(first.description, merged=[i.description for i in inputs[1:]]))
