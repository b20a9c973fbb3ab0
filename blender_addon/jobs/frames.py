"""Which frames a job covers: numbered image files, frame ranges, keyframes."""

from __future__ import annotations

import re
from pathlib import Path

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".webp", ".bmp")
VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
KEYFRAME_MODES = ("ALL", "INTERVAL", "ENDS")

_TRAILING_DIGITS = re.compile(r"(\d+)$")


class FramesError(ValueError):
    """Footage or a frame choice that cannot be used; the message says what to change."""


def numbered_images(folder: str | Path) -> dict[int, Path]:
    """{frame number: file} for the images of `folder` whose names end in digits (shot_0007.png -> 7)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FramesError(f"{folder} is not a folder of numbered images")
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        match = _TRAILING_DIGITS.search(path.stem)
        if path.suffix.lower() not in IMAGE_EXTS or not match:
            continue
        frame = int(match.group(1))
        if frame in found:
            raise FramesError(f"{found[frame].name} and {path.name} in {folder} are both frame {frame}; "
                              "keep one image sequence per folder")
        found[frame] = path
    if not found:
        raise FramesError(f"{folder} holds no numbered images ({', '.join(IMAGE_EXTS)}, named like frame_0001.png)")
    return found


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def sequence_folder(path: str | Path) -> Path:
    """The folder of an image sequence given as the folder itself or as any one of its images."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.suffix.lower() in VIDEO_EXTS:
        raise FramesError(f"{path.name} is a video, not an image sequence; give it as the footage itself "
                          "(Import Footage decodes videos) or export numbered PNGs into a folder")
    if path.suffix.lower() in IMAGE_EXTS and path.exists():
        return path.parent
    raise FramesError(f"{path} is neither a folder of numbered images nor one of its images")


def clip_range(frames: list[int], first: int | None, last: int | None) -> list[int]:
    kept = [f for f in frames if (first is None or f >= first) and (last is None or f <= last)]
    if not kept:
        raise FramesError(f"frames {first}-{last} hold none of the footage's frames "
                          f"({frames[0]}-{frames[-1]}); widen the range")
    return kept


def keyframes(frames: list[int], mode: str = "INTERVAL", interval: int = 8) -> list[int]:
    """The frames that get diffused; the rest are propagated from them.

    ALL: every frame. INTERVAL: every `interval`-th frame from the first, plus the last (so the end of
    the shot is never extrapolated). ENDS: the first and the last.
    """
    if mode not in KEYFRAME_MODES:
        raise FramesError(f"keyframe mode {mode!r} is not one of {', '.join(KEYFRAME_MODES)}")
    if not frames:
        raise FramesError("no frames to choose keyframes from")
    frames = sorted(frames)
    if mode == "ALL":
        return frames
    if mode == "ENDS":
        return sorted({frames[0], frames[-1]})
    if interval < 1:
        raise FramesError(f"keyframe interval must be 1 or more, got {interval}")
    chosen = frames[::interval]
    if chosen[-1] != frames[-1]:
        chosen.append(frames[-1])
    return chosen
