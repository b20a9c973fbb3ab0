"""Test footage for the temporal benchmark: real photographs moved by a known camera and a moving subject.

The background is a mosaic of scikit-image's photographs at their native resolution (real texture), seen
through a camera that pans, zooms and rolls a little each frame; a subject (the cat photograph, cut out with
a soft elliptical matte) crosses it on its own path, so it occludes and uncovers the background.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]


def background_mosaic() -> np.ndarray:
    canvas = np.full((1040, 1760, 3), 118, np.uint8)
    rows = [
        [data.astronaut(), data.rocket(), data.coffee()],
        [data.chelsea(), data.immunohistochemistry(), _rgb(data.brick()), _rgb(data.gravel())],
    ]
    y = 0
    for row in rows:
        x = 0
        for image in row:
            h, w = image.shape[:2]
            h, w = min(h, canvas.shape[0] - y), min(w, canvas.shape[1] - x)
            canvas[y : y + h, x : x + w] = image[:h, :w]
            x += w
        y += max(image.shape[0] for image in row)
    return canvas


class PhotoShot:
    """frame(i) -> HxWx3 uint8, deterministic, for i in range(count)."""

    def __init__(self, size=(960, 540), count=49):
        self.size, self.count = size, count
        self.background = background_mosaic()
        cat = data.cat()  # 300x451
        self.subject = cv2.resize(cat, (300, 200), interpolation=cv2.INTER_AREA)
        matte = np.zeros((200, 300), np.float32)
        cv2.ellipse(matte, (150, 100), (140, 92), 0, 0, 360, 1.0, -1)
        self.matte = cv2.GaussianBlur(matte, (0, 0), 3)[..., None]

    def camera(self, i: int) -> np.ndarray:
        """Canvas -> frame affine at frame i: pan right and down, slow zoom in, a slight roll."""
        scale = 1.0 + 0.0025 * i
        angle = 0.08 * i
        centre = (420 + 3.2 * i, 300 + 1.3 * i + 8 * np.sin(i / 6))
        m = cv2.getRotationMatrix2D(centre, angle, scale)
        m[:, 2] += np.array(self.size) / 2 - np.array(centre)
        return m

    def frame(self, i: int) -> np.ndarray:
        w, h = self.size
        image = cv2.warpAffine(self.background, self.camera(i), (w, h), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REFLECT)
        # The subject moves in frame space: left to right, bobbing, turning slowly.
        cx, cy = 180 + 11.0 * i, 300 + 40 * np.sin(i / 8)
        m = cv2.getRotationMatrix2D((150, 100), 0.4 * i, 1.0)
        m[:, 2] += (cx - 150, cy - 100)
        subject = cv2.warpAffine(self.subject, m, (w, h), flags=cv2.INTER_CUBIC)
        matte = cv2.warpAffine(self.matte[..., 0], m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        return np.round(image * (1 - matte) + subject * matte).astype(np.uint8)
