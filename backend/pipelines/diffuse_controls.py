"""ControlNet control maps: from the caller's render passes, or computed by controlnet_aux annotators.

A control map handed to ControlNet is an HxWx3 uint8 image in the convention its model was trained on:
depth is bright near and dark far, line maps are white lines on black, normals are encoded RGB, pose is
an OpenPose skeleton drawing, segmentation uses the ADE20K palette. `prepare_map` brings a pass Blender
rendered into that convention; `Annotators` computes the map from the colour frame instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import cv2
import numpy as np

if TYPE_CHECKING:
    from backend.models import ModelRegistry

CONTROL_TYPES = (
    "depth", "normal", "lineart", "softedge", "openpose", "mlsd", "segmentation", "canny", "scribble",
)

# The take layer that can feed each control type when the source brings it (see backend/stages/base.py).
CONTROL_LAYERS = {
    "depth": "depth",
    "normal": "normal",
    "lineart": "lineart",
    "softedge": "softedge",
    "openpose": "pose",
    "mlsd": "mlsd",
    "segmentation": "segmentation",
    "canny": "canny",
    "scribble": "scribble",
}
LINE_TYPES = ("lineart", "softedge", "mlsd", "canny", "scribble")

# controlnet_aux detector per control type: (class name, extra call arguments). None: no annotator exists.
ANNOTATORS: dict[str, tuple[str, dict] | None] = {
    "canny": ("CannyDetector", {"low_threshold": 100, "high_threshold": 200}),
    "softedge": ("HEDdetector", {"safe": True}),
    "scribble": ("HEDdetector", {"scribble": True}),
    "lineart": ("LineartDetector", {}),
    "mlsd": ("MLSDdetector", {}),
    "normal": ("NormalBaeDetector", {}),
    "openpose": ("OpenposeDetector", {}),
    "depth": ("MidasDetector", {}),
    "segmentation": None,
}


class ControlMapError(ValueError):
    """A control map that cannot be used; the message names the control and the fix."""


def as_rgb_u8(array: np.ndarray) -> np.ndarray:
    """Any HxW / HxWx1 / HxWx3 / HxWx4 image, uint8 or float in [0, 1], as HxWx3 uint8."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.dtype != np.uint8:
        a = np.round(np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ControlMapError(f"expected an HxW or HxWx3 image, got shape {array.shape}")
    return np.ascontiguousarray(a)


def depth_to_control(depth: np.ndarray, depth_range: tuple[float, float] | None = None) -> np.ndarray:
    """Scene depth (distances, Blender's Z pass) as a ControlNet depth map: inverse depth, near white.

    With `depth_range` (near, far) fixed for a whole shot the map does not breathe from frame to frame;
    without it each frame spans its own nearest..farthest finite depth. Background (inf, or beyond 1e9 as
    Blender writes it) is black.
    """
    z = np.asarray(depth, dtype=np.float32)
    if z.ndim == 3:
        z = z[:, :, 0]
    valid = np.isfinite(z) & (z > 0) & (z < 1e9)
    if not valid.any():
        return np.zeros(z.shape + (3,), np.uint8)
    near, far = depth_range if depth_range else (float(z[valid].min()), float(z[valid].max()))
    if far <= near:
        far = near * 1.001 + 1e-6
    inv = np.zeros_like(z)
    inv[valid] = 1.0 / np.clip(z[valid], near, far)
    unit = (inv - 1.0 / far) / (1.0 / near - 1.0 / far)
    unit[~valid] = 0.0
    return as_rgb_u8(np.clip(unit, 0.0, 1.0))


def prepare_map(control_type: str, array: np.ndarray, depth_range: tuple[float, float] | None = None) -> np.ndarray:
    """A render pass in the convention the ControlNet for `control_type` expects."""
    a = np.asarray(array)
    if control_type == "depth" and a.dtype != np.uint8 and (a.ndim == 2 or a.shape[-1] == 1) and (
        depth_range is not None or float(np.nanmax(np.where(np.isfinite(a), a, 0))) > 1.0
    ):
        return depth_to_control(a, depth_range)
    rgb = as_rgb_u8(a)
    if control_type in LINE_TYPES and rgb.mean() > 127:
        rgb = 255 - rgb  # a black-on-white line render (Freestyle) becomes white lines on black
    return rgb


def resize_map(control_type: str, rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    # label colours and poses must not blend into colours no class has
    interp = cv2.INTER_NEAREST if control_type in ("segmentation", "openpose") else cv2.INTER_AREA
    if rgb.shape[1] < width:
        interp = cv2.INTER_NEAREST if interp == cv2.INTER_NEAREST else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=interp)


class Annotators:
    """controlnet_aux detectors, weights from the registry's "annotators" role, kept warm in its cache."""

    def __init__(self, registry: ModelRegistry, device: str = "cpu"):
        self.registry = registry
        self.device = device

    def detector(self, control_type: str) -> Callable:
        entry = ANNOTATORS.get(control_type)
        if entry is None:
            raise ControlMapError(
                f"no annotator computes {control_type!r} maps from a colour frame; supply the map "
                f"(render the {CONTROL_LAYERS[control_type]!r} pass in Blender) or drop that control"
            )
        class_name, _ = entry
        import controlnet_aux

        cls = getattr(controlnet_aux, class_name)
        if class_name == "CannyDetector":  # no weights
            return self.registry.get_or_load(("annotator.canny",), cls)
        folder = self.registry.resolve("annotators")
        key = (f"annotator.{class_name}", folder.fingerprint(), self.device)

        def load():
            try:
                det = cls.from_pretrained(str(folder.path))
            except FileNotFoundError as e:
                from backend.models import ModelMissing

                raise ModelMissing(
                    "annotators", f"{folder.path} ({Path(e.filename or '').name or class_name} weights)",
                    "put the controlnet_aux annotator weights (lllyasviel/Annotators) in that folder, or run "
                    "`huggingface-cli download lllyasviel/Annotators`",
                    detail=f"The {class_name} weights are missing.",
                ) from None
            return det.to(self.device) if hasattr(det, "to") else det

        return self.registry.get_or_load(key, load)

    def __call__(self, control_type: str, image: np.ndarray, width: int, height: int) -> np.ndarray:
        """Compute the `control_type` map of an HxWx3 uint8 frame at width x height."""
        from PIL import Image

        det = self.detector(control_type)
        _, extra = ANNOTATORS[control_type]
        resolution = max(64, (min(width, height) // 64) * 64)
        out = det(Image.fromarray(as_rgb_u8(image)), detect_resolution=resolution,
                  image_resolution=resolution, output_type="np", **extra)
        return resize_map(control_type, as_rgb_u8(np.asarray(out)), width, height)


__all__ = ["CONTROL_TYPES", "CONTROL_LAYERS", "Annotators", "prepare_map", "resize_map", "depth_to_control"]
