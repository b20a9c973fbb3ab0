"""The sRGB transfer curve both ways (IEC 61966-2-1), on floats in [0, 1]."""

from __future__ import annotations

import numpy as np


def srgb_to_linear(value: np.ndarray) -> np.ndarray:
    value = np.asarray(value, np.float32)
    return np.where(value <= 0.04045, value / 12.92, ((value + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(value: np.ndarray) -> np.ndarray:
    value = np.clip(np.asarray(value, np.float32), 0.0, None)
    return np.where(value <= 0.0031308, value * 12.92, 1.055 * value ** (1 / 2.4) - 0.055).astype(np.float32)


# Linear light of each 8-bit sRGB code: cv2.LUT(u8_image, LINEAR_OF_U8) converts a whole frame in one pass.
LINEAR_OF_U8 = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0)
