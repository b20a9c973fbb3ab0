"""Colour matching between diffused grids: an affine transfer in CIE Lab, fitted on one anchor tile.

Two grids diffused separately come out in different colours even from the same inputs (the seed's four
spritesheets). Each later grid carries an anchor tile: a keyframe the previous grid also holds. A transfer
fitted so the new grid's anchor matches the old grid's anchor is then applied to the whole new grid.

    meanstd  per-channel mean and standard deviation in Lab (Reinhard et al.)
    mkl      Monge-Kantorovich linear map: the affine map that moves one Gaussian onto another with the
             least displacement; it also fixes cross-channel casts that per-channel matching cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

METHODS = ("meanstd", "mkl")


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 (or [0, 1] float) RGB to float32 Lab (L in [0, 100])."""
    unit = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(unit), cv2.COLOR_RGB2Lab)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float32 Lab to uint8 RGB, clipped to the displayable range."""
    unit = cv2.cvtColor(np.ascontiguousarray(lab.astype(np.float32)), cv2.COLOR_Lab2RGB)
    return np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIE76 colour difference between two RGB images of one size (1 is about a just-visible step)."""
    if a.shape != b.shape:
        raise ValueError(f"delta_e needs images of one shape, got {a.shape} and {b.shape}")
    diff = rgb_to_lab(a) - rgb_to_lab(b)
    return float(np.sqrt((diff * diff).sum(axis=2)).mean())


@dataclass
class ColourTransfer:
    """lab -> matrix @ (lab - source_mean) + target_mean, applied per pixel in Lab."""

    matrix: np.ndarray        # 3x3
    source_mean: np.ndarray   # 3
    target_mean: np.ndarray   # 3

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        lab = rgb_to_lab(rgb).reshape(-1, 3)
        out = (lab - self.source_mean) @ self.matrix.T + self.target_mean
        return lab_to_rgb(out.reshape(rgb.shape[:2] + (3,)))

    @classmethod
    def identity(cls) -> "ColourTransfer":
        return cls(np.eye(3, dtype=np.float64), np.zeros(3), np.zeros(3))


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def fit_transfer(source: np.ndarray, target: np.ndarray, method: str = "mkl") -> ColourTransfer:
    """The transfer that makes `source` (RGB) take the colours of `target` (RGB); they may differ in size."""
    if method not in METHODS:
        raise ValueError(f"colour transfer method {method!r} is unknown; choose one of {', '.join(METHODS)}")
    src = rgb_to_lab(source).reshape(-1, 3).astype(np.float64)
    ref = rgb_to_lab(target).reshape(-1, 3).astype(np.float64)
    mu_s, mu_r = src.mean(axis=0), ref.mean(axis=0)
    eps = 1e-3  # keeps flat tiles (a single colour) from dividing by zero
    if method == "meanstd":
        matrix = np.diag((ref.std(axis=0) + eps) / (src.std(axis=0) + eps))
    else:
        cov_s = np.cov(src, rowvar=False) + eps * np.eye(3)
        cov_r = np.cov(ref, rowvar=False) + eps * np.eye(3)
        root_s = _sqrtm_psd(cov_s)
        inv_root_s = np.linalg.inv(root_s)
        matrix = inv_root_s @ _sqrtm_psd(root_s @ cov_r @ root_s) @ inv_root_s
    return ColourTransfer(matrix, mu_s, mu_r)
