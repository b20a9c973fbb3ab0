"""A structural style for the benchmarks: flat colour (the preview grade, posterized) with black ink lines
drawn where the source has strong edges. Applied to each frame on its own it is that frame's truth; the ink
is what a colour model cannot express, so it tests the warped residual."""

from __future__ import annotations

import cv2
import numpy as np

from backend.pipelines.preview import preview_grade


def toon(rgb: np.ndarray, levels: int = 6) -> np.ndarray:
    flat = preview_grade(cv2.bilateralFilter(rgb, 7, 40, 5), levels)
    grey = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (5, 5), 1.2)
    ink = cv2.Canny(grey, 60, 140)
    ink = cv2.dilate(ink, np.ones((2, 2), np.uint8))
    flat[ink > 0] = 0
    return flat
