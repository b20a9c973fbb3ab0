"""Image files without OpenCV, for both sides: PNG writing and uncompressed OpenEXR.

Blender's Python has no OpenCV, and the OpenCV wheel of the backend's environment has no EXR codec, so
the take's float layers go through this one small reader and writer on both sides.

Blender renders its passes into one multilayer EXR; this module reads such a file (written with
codec NONE and interleaved channels, which is what `passes.py` asks Blender for) into numpy arrays,
and writes the take's layers: 8/16-bit PNG and single-channel float EXR (a `Y` channel, which
OpenCV reads as a grey float image). Arrays are top row first, like every image outside Blender.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

_EXR_MAGIC = 20000630
_EXR_TYPES = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}


class ImageFileError(ValueError):
    """A file this module cannot read or an array it cannot write; the message says why."""


def png_bytes(array: np.ndarray, deflate: Callable[[memoryview], bytes] | None = None, up: bool = False) -> bytes:
    """Encode a uint8 or uint16 array (H×W grey, H×W×3 RGB or H×W×4 RGBA) as a PNG file.

    `deflate` makes the zlib stream of the filtered rows (default: the standard library's, level 6); `up` predicts
    each row from the one above (PNG filter 2) instead of storing it as it is (filter 0)."""
    array = np.asarray(array)
    if array.dtype not in (np.uint8, np.uint16):
        raise ImageFileError(f"PNG needs uint8 or uint16 pixels, got {array.dtype}; scale and cast first")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageFileError(f"PNG needs H×W, H×W×3 or H×W×4 pixels, got shape {array.shape}")
    height, width, channels = array.shape
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    bit_depth = array.dtype.itemsize * 8
    rows = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(">")).reshape(height, -1).view(np.uint8)
    raw = np.empty((height, rows.shape[1] + 1), np.uint8)  # each row: its filter type, then its bytes
    raw[:, 0] = 2 if up else 0
    if up:  # byte by byte, modulo 256; the first row's "above" is zeros
        raw[0, 1:] = rows[0]
        np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])
    else:
        raw[:, 1:] = rows
    data = memoryview(raw).cast("B")
    compressed = deflate(data) if deflate is not None else zlib.compress(data, 6)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed) + chunk(b"IEND", b"")


def exr_bytes(channels: dict[str, np.ndarray]) -> bytes:
    """Encode same-sized H×W float arrays as an uncompressed scanline OpenEXR file (float32 channels)."""
    if not channels:
        raise ImageFileError("an EXR file needs at least one channel")
    names = sorted(channels)  # EXR stores channels in alphabetical order
    planes = [np.asarray(channels[n], dtype="<f4") for n in names]
    shape = planes[0].shape
    if len(shape) != 2 or any(p.shape != shape for p in planes):
        raise ImageFileError(f"EXR channels must be H×W arrays of one size, got {[p.shape for p in planes]}")
    height, width = shape

    def attribute(name: str, kind: str, value: bytes) -> bytes:
        return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(value)) + value

    chlist = b"".join(n.encode() + b"\0" + struct.pack("<iB3xii", 2, 0, 1, 1) for n in names) + b"\0"
    window = struct.pack("<iiii", 0, 0, width - 1, height - 1)
    header = (
        struct.pack("<ii", _EXR_MAGIC, 2)
        + attribute("channels", "chlist", chlist)
        + attribute("compression", "compression", b"\0")
        + attribute("dataWindow", "box2i", window)
        + attribute("displayWindow", "box2i", window)
        + attribute("lineOrder", "lineOrder", b"\0")
        + attribute("pixelAspectRatio", "float", struct.pack("<f", 1.0))
        + attribute("screenWindowCenter", "v2f", struct.pack("<ff", 0.0, 0.0))
        + attribute("screenWindowWidth", "float", struct.pack("<f", 1.0))
        + b"\0"
    )
    line_size = 4 * width * len(names)
    first = len(header) + 8 * height
    offsets = struct.pack(f"<{height}Q", *(first + y * (8 + line_size) for y in range(height)))
    lines = np.stack(planes, axis=1)  # H × channels × W: one scanline holds each channel's row in turn
    body = b"".join(struct.pack("<ii", y, line_size) + lines[y].tobytes() for y in range(height))
    return header + offsets + body


def read_exr(path: str | Path) -> dict[str, np.ndarray]:
    """Read an uncompressed single-part scanline EXR into {channel name: H×W float32 array}."""
    return decode_exr(Path(path).read_bytes(), str(path))


def decode_exr(data: bytes, path: str = "EXR data") -> dict[str, np.ndarray]:
    """The bytes of an uncompressed single-part scanline EXR as {channel name: H×W float32 array}."""
    if len(data) < 8 or struct.unpack_from("<i", data, 0)[0] != _EXR_MAGIC:
        raise ImageFileError(f"{path} is not an OpenEXR file")
    flags = struct.unpack_from("<i", data, 4)[0] >> 8
    if flags & 0b11010:  # tiled (0x200), deep (0x800) or multi-part (0x1000); long names are fine
        raise ImageFileError(f"{path} is tiled, deep or multi-part; write it as interleaved scanlines")
    attributes, pos = {}, 8
    while data[pos] != 0:
        name, pos = _cstring(data, pos)
        kind, pos = _cstring(data, pos)
        size = struct.unpack_from("<i", data, pos)[0]
        attributes[name] = (kind, data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    pos += 1
    if attributes["compression"][1][0] != 0:
        raise ImageFileError(f"{path} is compressed; write it with codec NONE to read it here")
    x0, y0, x1, y1 = struct.unpack("<iiii", attributes["dataWindow"][1])
    width, height = x1 - x0 + 1, y1 - y0 + 1
    channels = _channel_list(attributes["channels"][1])
    planes = {name: np.empty((height, width), np.float32) for name, _ in channels}
    offsets = struct.unpack_from(f"<{height}Q", data, pos)
    for offset in offsets:
        y, _size = struct.unpack_from("<ii", data, offset)
        at = offset + 8
        for name, dtype in channels:
            row = np.frombuffer(data, dtype, width, at)
            planes[name][y - y0] = row
            at += width * dtype.itemsize
    return planes


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\0", pos)
    return data[pos:end].decode(), end + 1


def _channel_list(raw: bytes) -> list[tuple[str, np.dtype]]:
    channels, pos = [], 0
    while raw[pos] != 0:
        name, pos = _cstring(raw, pos)
        pixel_type, _linear, x_sampling, y_sampling = struct.unpack_from("<iB3xii", raw, pos)
        pos += 16
        if (x_sampling, y_sampling) != (1, 1):
            raise ImageFileError(f"EXR channel {name!r} is subsampled, which is not supported")
        channels.append((name, _EXR_TYPES[pixel_type]))
    return channels
