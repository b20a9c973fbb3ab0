"""The screen's darkening under the figure, as a layer: 0 = no shadow, 1 = the screen fully dark there.

Brightness of the screen channel against the screen's unshadowed level at that place (the screen
model's level), counted only where the pixel is screen (weighted by 1 - alpha). A small dead zone keeps
sensor noise and the model's smoothing out of the layer. The brightness is a blur over the clear screen
around a pixel only: blurring the figure in would read its own darkness as a shadow, a dark ring around
its outline that the card would lay on the floor as a halo.
"""

from __future__ import annotations

import cv2
import numpy as np

from backend.pipelines.screen_model import EPS, ScreenModel

DEAD_ZONE = 0.04
CLEAR = 0.02  # alpha below which a pixel is all screen


def shadow_layer(rgb: np.ndarray, alpha: np.ndarray, screen: ScreenModel) -> np.ndarray:
    """HxW float32 in [0, 1]: how much darker than its lit level the screen is at each pixel."""
    clear = (alpha < CLEAR).astype(np.float32)
    channel = np.ascontiguousarray(rgb[..., screen.channel], np.float32)
    near = cv2.GaussianBlur(clear, (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE)
    summed = cv2.GaussianBlur(channel * clear, (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE)
    level = np.maximum(screen.level, EPS)
    value = np.where(near > 1e-3, summed / np.maximum(near, 1e-3), level)  # deep inside the figure: no reading
    darkening = 1.0 - value / level
    shadow = np.clip((darkening - DEAD_ZONE) / (1.0 - DEAD_ZONE), 0.0, 1.0)
    return (shadow * (1.0 - alpha)).astype(np.float32)
