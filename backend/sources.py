"""Where a job's frames come from: a folder of numbered images, a video file, or a take folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from backend.image_header import DEFAULT_MAX_MEGAPIXELS, HeaderError, budget_message, image_size, over_budget
from backend.imageio import (IMAGE_EXTS, VIDEO_EXTS, ImageError, decode_layer, numbered_images, read_image,
                             video_fps, video_frames, video_size)
from backend.ipc.take import Take, TakeError


class SourceError(ValueError):
    """A source path that cannot be used; the message says why and what is accepted."""


@dataclass
class FrameSource:
    frames: list[int]
    size: tuple[int, int]          # (width, height)
    fps: float
    read: Callable[[int], dict[str, np.ndarray]]
    description: dict
    any_order: bool = False        # frames may be read in any order, side by side (files, not a video)


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


def open_source(path: str | Path, frame_range: tuple[int, int] | None = None, *,
                max_megapixels: float = DEFAULT_MAX_MEGAPIXELS, allow_gaps: bool = False) -> FrameSource:
    """Frames from a folder, video or take. Sizes come from headers first: a frame over the pixel budget, or
    of another size than the first, is refused before anything is decoded."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(f"{path} does not exist; give a folder of numbered images, a video file or a take folder")
    try:
        is_take = path.is_dir() and (path / "take.json").is_file()
    except PermissionError:
        raise SourceError(f"cannot read the input folder {path}: permission denied; give this user read access") from None
    if is_take:
        source = _take_source(path)
    elif path.is_dir():
        source = _folder_source(path, frame_range, max_megapixels)
    elif path.suffix.lower() in VIDEO_EXTS:
        source = _video_source(path, max_megapixels)
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
    if over_budget(source.size, max_megapixels):
        raise SourceError(budget_message(f"{path}: its frames", source.size, max_megapixels))
    if not allow_gaps:
        _check_gaps(path, source.frames)
    return source


def _check_gaps(path: Path, frames: list[int]) -> None:
    gaps = [(a, b) for a, b in zip(frames, frames[1:]) if b != a + 1]
    if gaps:
        a, b = gaps[0]
        missing = f"frame {a + 1}" if b == a + 2 else f"frames {a + 1}-{b - 1}"
        raise SourceError(f"{path}: {missing} missing between {a} and {b}"
                          f"{f' ({len(gaps)} gaps in all)' if len(gaps) > 1 else ''}; add the missing frames, pick "
                          f"a range without gaps with --frames, or pass --allow-gaps to run the frames that are there")


def sequence_files(folder: Path, what: str = "folder") -> dict[int, Path]:
    """{frame number: file} of the one numbered image sequence in `folder`; two sequences (clip_0001.png
    beside take2_0001.png, or 0001.png beside 0001.jpg) are refused, naming both."""
    try:
        found = numbered_images(folder)
    except PermissionError:
        raise SourceError(f"cannot read the {what} {folder}: permission denied; give this user read access") from None
    except OSError as e:
        raise SourceError(f"cannot read the {what} {folder}: {e.strerror}; check the path") from None
    sequences: dict[str, dict[int, Path]] = {}
    for number, file in found:
        files = sequences.setdefault(_pattern(file), {})
        if number in files:
            raise SourceError(f"{folder}: frame {number} appears twice ({files[number].name} and {file.name}); "
                              "keep one of them")
        files[number] = file
    if len(sequences) > 1:
        (a, fa), (b, fb) = sorted(sequences.items(), key=lambda kv: -len(kv[1]))[:2]
        raise SourceError(f"{folder} holds more than one image sequence: {a} ({len(fa)} files) and {b} ({len(fb)} "
                          f"files); put each sequence in its own folder")
    return next(iter(sequences.values()), {})


def _pattern(file: Path) -> str:
    """clip_0012.png -> clip_#.png: what the files of one sequence share (padded or not)."""
    return f"{file.stem.rstrip('0123456789')}#{file.suffix.lower()}"


def frame_sizes(files: dict[int, Path], max_megapixels: float, same_size: bool = True) -> tuple[int, int] | None:
    """The one size of a sequence, read from every file's header (no decoding); refuses a file over the
    pixel budget, of another size than the first (unless `same_size` is off), or with a damaged header."""
    first_size = first_file = None
    for file in files.values():
        try:
            size = image_size(file)
        except HeaderError as e:
            raise ImageError(str(e)) from None
        except OSError as e:
            raise ImageError(f"cannot read {file}: {e.strerror}; check its permissions") from None
        if size is None:
            continue  # a format without a header reader here: decoded (and checked) when it is read
        if over_budget(size, max_megapixels):
            raise ImageError(budget_message(f"frame {file.name}", size, max_megapixels))
        if first_size is None:
            first_size, first_file = size, file
        elif size != first_size and same_size:
            raise ImageError(f"frame {file.name} is {size[0]}x{size[1]}, but the sequence starts at "
                             f"{first_size[0]}x{first_size[1]} ({first_file.name}); give every frame one size")
    return first_size


def _folder_source(folder: Path, frame_range: tuple[int, int] | None, max_megapixels: float) -> FrameSource:
    files = sequence_files(folder, "input folder")
    if not files:
        raise SourceError(f"{folder} holds no numbered images (name them like 0001.png, 0002.png ...)")
    if frame_range is not None:
        files = {f: p for f, p in files.items() if frame_range[0] <= f <= frame_range[1]} or files
    size = frame_sizes(files, max_megapixels)
    if size is None:
        first = read_image(next(iter(files.values())))
        size = (first.shape[1], first.shape[0])

    def read(frame: int) -> dict[str, np.ndarray]:
        arrays = _as_color(read_image(files[frame]))
        if arrays["color"].shape[:2] != (size[1], size[0]):
            raise ImageError(f"frame {files[frame].name} is {arrays['color'].shape[1]}x{arrays['color'].shape[0]}, "
                             f"but the sequence is {size[0]}x{size[1]}; give every frame one size")
        return arrays

    return FrameSource(sorted(files), size, 24.0, read, {"kind": "images", "path": str(folder)},
                       any_order=True)


def _video_source(path: Path, max_megapixels: float) -> FrameSource:
    """Frames 1..N of a video. Reading is sequential; asking for an earlier frame reopens the file."""
    claimed = video_size(path)
    if claimed is not None and over_budget(claimed, max_megapixels):
        raise SourceError(budget_message(f"{path}: its frames", claimed, max_megapixels))
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
    try:
        take = Take.open(root)
    except TakeError as e:
        raise SourceError(f"{e}; give a take folder written by Diffusion Stage, or a folder of numbered images") from None
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


@dataclass
class SideInput:
    """A side input read on the client: numbered items (frame numbers, or 0 for a single image)."""

    keys: list[int]
    read: Callable[[int], dict[str, np.ndarray]]


def open_side(name: str, path: str | Path, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> SideInput:
    """A side input from one image, or from a folder of numbered images (in it or in its color/ subfolder)
    with optional alpha/ and depth/ sequences beside: arrays named color, alpha, depth, as the files hold them."""
    path = Path(path).expanduser()
    what = f"side input {name!r}"
    if path.is_file():
        size = image_size(path)
        if size is not None and over_budget(size, max_megapixels):
            raise ImageError(budget_message(f"{what} {path.name}", size, max_megapixels))
        return SideInput([0], lambda key: {"color": read_image(path)})
    if not path.is_dir():
        raise SourceError(f"{what}: {path} does not exist; give a folder of numbered images or one image file")
    color_dir = path / "color" if (path / "color").is_dir() else path
    layers = {"color": sequence_files(color_dir, f"{what} folder")}
    for layer in ("alpha", "depth"):
        if (path / layer).is_dir():
            layers[layer] = sequence_files(path / layer, f"{what} folder")
    if not layers["color"]:
        raise SourceError(f"{what}: {color_dir} holds no numbered images (name them like 0012.png)")
    for files in layers.values():
        frame_sizes(files, max_megapixels, same_size=False)  # the budget, from the headers

    def read(key: int) -> dict[str, np.ndarray]:
        return {layer: read_image(files[key]) for layer, files in layers.items() if key in files}

    return SideInput(sorted(layers["color"]), read)
