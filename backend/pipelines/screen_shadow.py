"""The screen's darkening under the figure, as a layer: 0 = no shadow, 1 = the screen fully dark there.

Brightness of the screen channel against the screen's unshadowed level at that place (the screen
model's level), counted only where the pixel is screen (weighted by 1 - alpha). A small dead zone keeps
sensor noise and the model's smoothing out of the layer.
"""

from __future__ import annotations

import cv2
import numpy as np

from backend.pipelines.screen_model import EPS, ScreenModel

DEAD_ZONE = 0.04


def shadow_layer(rgb: np.ndarray, alpha: np.ndarray, screen: ScreenModel) -> np.ndarray:
    """HxW float32 in [0, 1]: how much darker than its lit level the screen is at each pixel."""
    value = cv2.GaussianBlur(rgb[..., screen.channel], (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE)
    darkening = 1.0 - value / np.maximum(screen.level, EPS)
    shadow = np.clip((darkening - DEAD_ZONE) / (1.0 - DEAD_ZONE), 0.0, 1.0)
    return (shadow * (1.0 - alpha)).astype(np.float32)
