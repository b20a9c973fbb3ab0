"""Image files in and out of the backend: take layers, frame folders and video files.

Maintained codecs only: PNG (8 and 16 bit), JPEG, TIFF, WebP and video read through OpenCV; OpenEXR (any
compression, half or float channels) through the OpenEXR bindings. Take layers are written as PNG by the take's
own small writer (backend/ipc/imagefiles.py, which Blender's side uses too: its Python has neither library) with
libdeflate, and as EXR by the OpenEXR bindings.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import OpenEXR
import deflate

from backend.ipc.imagefiles import ImageFileError, png_bytes
from backend.ipc.take import Layer

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".webp", ".bmp")
VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
# PNG as every take layer is written: each row predicted from the one above ("up"), deflated by libdeflate's level 1
# (the deflate package): ~6 ms for a 960x540 frame against 13.6 ms for libpng's level 1 with run-length coding (and
# 27 ms for its default: all five filters tried per row), about the same size. Lossless either way; any PNG reader
# decodes it. Not ISA-L, though 2 ms faster: in the server its stream for the very same rows differed from run to run
# (about one run in ten; the pixels decoded alike), and a take must be the same bytes every time it is made.
PNG_LEVEL = 1


def _deflate(data: memoryview) -> bytes:
    return deflate.zlib_compress(data, PNG_LEVEL)


class ImageError(ValueError):
    """An image or video that cannot be read or written; the message names the file and the fix."""


def to_unit(array: np.ndarray) -> np.ndarray:
    """Any image array as float32 in [0, 1]."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def encode_layer(layer: Layer, array: np.ndarray) -> bytes:
    """Encode one frame of a layer into the file bytes the take stores."""
    if layer.format == "exr":
        return exr_bytes(array)
    if layer.format == "png16":
        if layer.near is not None and layer.far is not None:
            span = (layer.far - layer.near) or 1.0
            unit = np.clip((array.astype(np.float32) - layer.near) / span, 0.0, 1.0)
        else:
            unit = to_unit(array)
        data = np.round(unit * 65535.0).astype(np.uint16)
    else:
        data = array if array.dtype == np.uint8 else np.round(to_unit(array) * 255.0).astype(np.uint8)
    try:
        return png_bytes(data, _deflate, up=True)
    except ImageFileError as e:
        raise ImageError(f"could not encode a {array.shape} {array.dtype} array as {layer.format}: {e}") from None


def decode_layer(layer: Layer, data: bytes | np.ndarray) -> np.ndarray:
    """Decode a take file back to the array a stage yielded (png16 depth back to its units)."""
    if layer.format == "exr":
        return exr_channel(bytes(data))
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f"could not decode a {layer.format} file of {buf.size} bytes")
    image = _swap_red_blue(image)
    if layer.format == "png16" and layer.near is not None and layer.far is not None:
        return (image.astype(np.float32) / 65535.0) * (layer.far - layer.near) + layer.near
    return image


def exr_bytes(array: np.ndarray) -> bytes:
    """One H×W float layer as a ZIP-compressed (lossless) scanline OpenEXR file with a `Y` channel."""
    plane = np.ascontiguousarray(array, dtype=np.float32)
    if plane.ndim != 2:
        raise ImageError(f"an EXR layer holds one H×W channel, got shape {plane.shape}")
    buf = io.BytesIO()
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, {"Y": plane}).write(buf)
    return buf.getvalue()


def exr_planes(data: bytes, source: str = "EXR data") -> dict[str, np.ndarray]:
    """Every channel of an OpenEXR file's first part as H×W float32 (half and uint channels converted)."""
    try:
        exr = OpenEXR.File(io.BytesIO(data), separate_channels=True)
        return {name: np.asarray(channel.pixels, dtype=np.float32) for name, channel in exr.channels().items()}
    except Exception as e:  # the bindings raise plain RuntimeError/ValueError for damaged files
        raise ImageError(f"{source} could not be read as OpenEXR ({str(e).strip() or type(e).__name__}); "
                         "re-export it") from None


def exr_channel(data: bytes, source: str = "EXR data") -> np.ndarray:
    """The depth-like channel of an EXR (Y, Z, V or R, in that order of preference) as float32."""
    planes = exr_planes(data, source)
    if not planes:
        raise ImageError(f"{source} holds no channel; re-export it")
    for name in ("Y", "Z", "V", "R", "Depth.V", "Depth.Z"):
        if name in planes:
            return planes[name]
    return planes[sorted(planes)[0]]


def _swap_red_blue(image: np.ndarray) -> np.ndarray:
    """RGB(A) <-> BGR(A), contiguous; grey as it is. OpenCV's channel swap: the same bytes as numpy's reversed view
    made contiguous, in a twentieth of the time (1.3 ms -> 0.05 ms a 960x540 frame, read and written once each)."""
    if image.ndim == 3 and image.shape[2] in (3, 4) and image.dtype in (np.uint8, np.uint16, np.float32):
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image[:, :, ::-1])
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, [2, 1, 0, 3]])
    return np.ascontiguousarray(image)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB(A) or grey, in its own dtype (uint8, uint16 or float32 for EXR)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path} does not exist")
    if path.suffix.lower() == ".exr":
        return exr_channel(path.read_bytes(), str(path))
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f"{path} could not be decoded: it is truncated, damaged or not an image "
                         f"({', '.join(IMAGE_EXTS)}); re-export it")
    return _swap_red_blue(image)


def write_image(path: str | os.PathLike, array: np.ndarray) -> None:
    from backend.ipc.take import atomic_write_bytes

    fmt = "exr" if str(path).endswith(".exr") else ("png16" if array.dtype == np.uint16 else "png8")
    atomic_write_bytes(Path(path), encode_layer(Layer(fmt), array))


def numbered_images(folder: Path) -> list[tuple[int, Path]]:
    """Image files of a folder with the frame number taken from the digits at the end of the name."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_EXTS:
            continue
        tail = ""
        for ch in reversed(path.stem):
            if not ch.isdigit():
                break
            tail = ch + tail
        if not tail:
            continue
        found.append((int(tail), path))
    found.sort()
    return found


def video_frames(path: Path) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ImageError(f"{path} could not be opened as a video; convert it to mp4 (H.264) or to a PNG sequence")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield _swap_red_blue(frame)
    finally:
        cap.release()


def video_size(path: Path) -> tuple[int, int] | None:
    """(width, height) the container declares, before decoding a frame; None when it declares none."""
    cap = cv2.VideoCapture(str(path))
    try:
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()
    return size if min(size) > 0 else None


def video_fps(path: Path) -> float:
    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    return float(fps) if fps and fps > 0 else 24.0
