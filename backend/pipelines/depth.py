"""Monocular depth for one frame with a transformers depth model (Depth Anything V2, ZoeDepth, DPT).

Relative models (Depth Anything V2 relative, DPT/MiDaS) predict *disparity*: larger is nearer, up to an
unknown scale and shift. Metric models (ZoeDepth, Depth Anything metric) predict metres. `DepthModel.kind`
says which, because the fit that makes a sequence steady (backend/pipelines/depth_fit.py) works in
the space where the model's ambiguity is affine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

DISPARITY = "disparity"
METRIC = "metric"


@dataclass
class DepthModel:
    model: Any          # a transformers *ForDepthEstimation, in eval mode, on its device
    processor: Any      # its image processor
    kind: str           # DISPARITY or METRIC
    name: str           # where it came from, for messages and take.json


def model_kind(config: Any) -> str:
    """DISPARITY or METRIC for a transformers depth config."""
    if config.model_type == "zoedepth":
        return METRIC
    if getattr(config, "depth_estimation_type", "relative") == "metric":
        return METRIC
    return DISPARITY


def predict_depth(depth: DepthModel, rgb: np.ndarray, resolution: int | None = None) -> np.ndarray:
    """The model's raw prediction for one HxWx3 uint8 frame, as HxW float32 at the frame's size."""
    import torch

    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"predict_depth expects an HxWx3 colour frame, got shape {rgb.shape}")
    height, width = rgb.shape[:2]
    extra = {"size": {"height": resolution, "width": resolution}} if resolution else {}
    inputs = depth.processor(images=np.ascontiguousarray(rgb[..., :3]), return_tensors="pt", **extra)
    param = next(depth.model.parameters())
    pixels = inputs["pixel_values"].to(device=param.device, dtype=param.dtype)
    with torch.inference_mode():
        outputs = depth.model(pixel_values=pixels)
    outputs.predicted_depth = outputs.predicted_depth.float()
    post = {"target_sizes": [(height, width)]}
    if depth.model.config.model_type == "zoedepth":
        post["source_sizes"] = [(height, width)]  # so ZoeDepth's reflection padding is cut away
    result = depth.processor.post_process_depth_estimation(outputs, **post)[0]["predicted_depth"]
    return result.detach().cpu().numpy().astype(np.float32)
