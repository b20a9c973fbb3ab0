"""An image file's size from its header, without decoding it: the pixel budget is checked before any
allocation, so a small file that claims 20000x20000 pixels is refused in microseconds.

PNG (IHDR), JPEG (the SOF marker), OpenEXR (dataWindow), BMP, WebP (VP8, VP8L, VP8X) and TIFF (the first
image's width and length tags). Reads a few bytes per marker or attribute, never the pixels.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

DEFAULT_MAX_MEGAPIXELS = 50.0   # 8K (8192x4320 is 35 MP) fits; a 20000x20000 claim (400 MP) does not


class HeaderError(ValueError):
    """A header that does not say a size (not an image, or truncated)."""


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the header, or None for a format this module does not parse."""
    with open(path, "rb") as f:
        head = f.read(32)
        f.seek(0)
        for magic, reader in _READERS:
            if head.startswith(magic):
                try:
                    return reader(f)
                except (struct.error, IndexError):
                    raise HeaderError(f"{path} has a truncated or damaged header; re-export it") from None
    return None


def over_budget(size: tuple[int, int], max_megapixels: float) -> bool:
    return size[0] * size[1] > max_megapixels * 1e6


def budget_message(what: str, size: tuple[int, int], max_megapixels: float) -> str:
    megapixels = size[0] * size[1] / 1e6
    return (f"{what} is {size[0]}x{size[1]} ({megapixels:.1f} MP), above the pixel budget of {max_megapixels:g} MP; "
            f"scale it down, or raise the budget with --max-megapixels {max(megapixels, max_megapixels) * 1.01:.0f} "
            "if this machine has the memory")


def _png(f: BinaryIO) -> tuple[int, int]:
    data = f.read(24)
    if data[12:16] != b"IHDR":
        raise HeaderError("PNG without IHDR")
    return struct.unpack(">II", data[16:24])


def _jpeg(f: BinaryIO) -> tuple[int, int]:
    f.read(2)
    while True:
        marker = f.read(2)
        while marker[:1] == b"\xff" and marker[1:2] == b"\xff":  # fill bytes
            marker = marker[1:] + f.read(1)
        if len(marker) < 2 or marker[0] != 0xFF:
            raise HeaderError("JPEG without a frame header")
        kind = marker[1]
        if kind in (0xD8, 0x01) or 0xD0 <= kind <= 0xD7:
            continue  # markers without a length
        (length,) = struct.unpack(">H", f.read(2))
        if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):  # start of frame (any coding)
            height, width = struct.unpack(">xHH", f.read(5))
            return width, height
        f.seek(length - 2, 1)


def _exr(f: BinaryIO) -> tuple[int, int]:
    f.seek(8)
    for _ in range(1000):  # attributes: name\0 type\0 size value
        name = _cstring(f)
        if not name:
            break
        _cstring(f)
        (size,) = struct.unpack("<i", f.read(4))
        if name == b"dataWindow":
            x0, y0, x1, y1 = struct.unpack("<iiii", f.read(16))
            return x1 - x0 + 1, y1 - y0 + 1
        f.seek(size, 1)
    raise HeaderError("EXR without dataWindow")


def _cstring(f: BinaryIO, limit: int = 256) -> bytes:
    out = bytearray()
    while len(out) <= limit:
        ch = f.read(1)
        if not ch:
            raise HeaderError("truncated EXR header")
        if ch == b"\0":
            return bytes(out)
        out += ch
    raise HeaderError("EXR attribute name too long")


def _bmp(f: BinaryIO) -> tuple[int, int]:
    data = f.read(26)
    width, height = struct.unpack("<ii", data[18:26])
    return width, abs(height)


def _webp(f: BinaryIO) -> tuple[int, int]:
    data = f.read(30)
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    raise HeaderError("unknown WebP chunk")


def _tiff(f: BinaryIO) -> tuple[int, int]:
    order = "<" if f.read(2) == b"II" else ">"
    f.read(2)
    (offset,) = struct.unpack(order + "I", f.read(4))
    f.seek(offset)
    (count,) = struct.unpack(order + "H", f.read(2))
    size = {}
    for _ in range(min(count, 1000)):
        tag, kind, _n, value = struct.unpack(order + "HHI4s", f.read(12))
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
            size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[: 2 if kind == 3 else 4])[0]
    if 256 not in size or 257 not in size:
        raise HeaderError("TIFF without width and length")
    return size[256], size[257]


_READERS = (
    (b"\x89PNG\r\n\x1a\n", _png),
    (b"\xff\xd8", _jpeg),
    (b"\x76\x2f\x31\x01", _exr),
    (b"BM", _bmp),
    (b"RIFF", _webp),
    (b"II*\x00", _tiff),
    (b"MM\x00*", _tiff),
)
