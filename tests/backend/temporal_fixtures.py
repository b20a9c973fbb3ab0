"""Synthetic footage with known motion for the temporal tests: a photograph moved by known amounts, and an
occluding textured disc crossing it. Frames are made on demand; the truth of every frame is known."""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data

from backend.stages.base import StageContext


def photo(size: int = 384) -> np.ndarray:
    return cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)


class Shot:
    """Frame i: the background under affine motion (pan dx, dy and roll per frame), plus optionally a disc of
    another photograph crossing at `disc_speed` px per frame. Also yields the disc's true alpha."""

    def __init__(self, size=(128, 96), count=13, pan=(1.5, 0.5), roll=0.0, disc_speed=0.0, disc_radius=18, disc_start=10.0,
                 background=None, cut_at=None):
        self.size, self.count = size, count
        self.pan, self.roll, self.disc_speed, self.disc_radius = pan, roll, disc_speed, disc_radius
        self.background = photo() if background is None else background
        self.other = cv2.resize(data.chelsea(), (2 * disc_radius + 8, 2 * disc_radius + 8),
                                interpolation=cv2.INTER_AREA)
        self.cut_at, self.disc_start = cut_at, disc_start
        self.second = cv2.resize(data.coffee(), (384, 384), interpolation=cv2.INTER_AREA)

    def camera(self, i: int) -> np.ndarray:
        w, h = self.size
        centre = (150 + self.pan[0] * i, 150 + self.pan[1] * i)
        m = cv2.getRotationMatrix2D(centre, self.roll * i, 1.0)
        m[:, 2] += np.array([w / 2, h / 2]) - np.array(centre)
        return m

    def disc(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        w, h = self.size
        r = self.disc_radius
        cx, cy = self.disc_start + self.disc_speed * i, h / 2
        m = np.float32([[1, 0, cx - (r + 4)], [0, 1, cy - (r + 4)]])
        patch = cv2.warpAffine(self.other, m, (w, h), flags=cv2.INTER_LINEAR)
        mask = np.zeros((h * 8, w * 8), np.uint8)  # supersampled for a soft, exact-coverage edge
        cv2.circle(mask, (int(cx * 8), int(cy * 8)), r * 8, 255, -1)
        alpha = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        return patch, alpha

    def layers(self, i: int) -> dict[str, np.ndarray]:
        w, h = self.size
        background = self.second if self.cut_at is not None and i >= self.cut_at else self.background
        image = cv2.warpAffine(background, self.camera(i), (w, h), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        alpha = np.zeros((h, w), np.float32)
        if self.disc_speed:
            patch, alpha = self.disc(i)
            image = image * (1 - alpha[..., None]) + patch * alpha[..., None]
        depth = np.where(alpha > 0.5, 0.3, 0.8).astype(np.float32)
        return {"color": np.round(image).astype(np.uint8), "alpha": alpha, "depth": depth}

    def frame(self, i: int) -> np.ndarray:
        return self.layers(i)["color"]


def context(shot: Shot, scratch, todo=None, first: int = 1) -> StageContext:
    """A real StageContext over a shot, frames numbered from `first` like Blender's."""
    frames = list(range(first, first + shot.count))
    return StageContext(frames=frames, todo=list(frames if todo is None else todo),
                        read_input=lambda f: shot.layers(f - first), scratch=scratch, size=shot.size)


def region_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    diff = (a.astype(np.float32) - b.astype(np.float32))[mask]
    mse = float(np.mean(diff**2)) / 255.0**2
    return 10 * np.log10(1.0 / max(mse, 1e-12))
