"""A contact sheet: the shot's frames as a grid of thumbnails, each with its frame number drawn on it.

Digits come from a 3×5 bitmap font scaled up with numpy (no PIL in Blender's Python). Frames are read one
at a time and shrunk at once, so the sheet of a long shot never holds more than one full frame.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from blender_addon.headless.images import read_pixels, write_png

_FONT = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111",
}
GLYPHS = {ch: np.array([int(b) for b in bits], bool).reshape(5, 3) for ch, bits in _FONT.items()}


def text_mask(text: str, scale: int = 3) -> np.ndarray:
    """Boolean pixels of `text` (digits only), `scale` pixels per font dot, one dot between characters."""
    if not text or any(ch not in GLYPHS for ch in text):
        raise ValueError(f"the contact sheet's font has digits only, got {text!r}")
    row = [np.pad(GLYPHS[ch], ((0, 0), (0, 1))) for ch in text]
    mask = np.concatenate(row, axis=1)[:, :-1]
    return np.kron(mask, np.ones((scale, scale), bool))


def shrink(image: np.ndarray, width: int) -> np.ndarray:
    """Box-average down by the largest whole factor, then pick pixels to land on exactly `width` wide."""
    h, w = image.shape[:2]
    height = max(1, round(h * width / w))
    step = max(1, min(w // width, h // height))
    if step > 1:
        image = image[: h // step * step, : w // step * step]
        image = image.reshape(h // step, step, w // step, step, -1).mean(axis=(1, 3))
    rows = np.linspace(0, image.shape[0] - 1, height).round().astype(int)
    cols = np.linspace(0, image.shape[1] - 1, width).round().astype(int)
    return image[rows][:, cols]


def label(thumb: np.ndarray, number: int, scale: int = 2) -> None:
    """Draw `number` white on a black box in the thumbnail's top-left corner (in place)."""
    mask = text_mask(str(number), scale)
    pad = scale
    box_h, box_w = mask.shape[0] + 2 * pad, mask.shape[1] + 2 * pad
    box_h, box_w = min(box_h, thumb.shape[0]), min(box_w, thumb.shape[1])
    thumb[:box_h, :box_w] = 0.0
    region = thumb[pad:pad + mask.shape[0], pad:pad + mask.shape[1]]
    region[mask[: region.shape[0], : region.shape[1]]] = 1.0


def contact_sheet(frames: dict[int, Path], out_path: str | Path, *, thumb_width: int = 256,
                  columns: int | None = None, gap: int = 4) -> Path:
    """Write a grid of the `frames` ({number: image path}) to `out_path` (PNG, RGB 8-bit)."""
    if not frames:
        raise ValueError("no frames to put on a contact sheet")
    numbers = sorted(frames)
    columns = columns or min(len(numbers), max(1, math.ceil(math.sqrt(len(numbers) * 9 / 16 * 1.2))))
    rows = math.ceil(len(numbers) / columns)
    sheet = None
    for i, number in enumerate(numbers):
        thumb = shrink(read_pixels(frames[number])[:, :, :3], thumb_width)
        label(thumb, number, scale=max(1, thumb_width // 128))
        th, tw = thumb.shape[:2]
        if sheet is None:
            sheet = np.full((rows * (th + gap) + gap, columns * (tw + gap) + gap, 3), 0.12, np.float32)
        r, c = divmod(i, columns)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        sheet[y:y + th, x:x + tw] = thumb[: sheet.shape[0] - y, : sheet.shape[1] - x]
    return write_png(out_path, np.round(np.clip(sheet, 0, 1) * 255).astype(np.uint8))
