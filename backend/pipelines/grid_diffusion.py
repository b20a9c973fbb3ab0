"""Diffusion as a keyframe stylizer: a whole grid of keyframes in one pass, so they share one style.

The grid path (backend/pipelines/grid.py) packs keyframes and their control maps into one canvas and
calls a stylizer `(grid, control_maps) -> stylized grid`; this makes that stylizer out of the ControlNet
diffusion pipeline. Control maps arrive by take layer name (depth, normal, pose ...) and go to the
ControlNet units of those types; the output is brought back to the canvas size exactly.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from backend.pipelines.diffuse import DiffuseParams, DiffusePipeline
from backend.pipelines.diffuse_controls import CONTROL_LAYERS


def control_maps_for(params: DiffuseParams, layers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The layers that feed this job's ControlNet units, keyed by control type."""
    wanted = {c.type for c in params.controls}
    return {kind: layers[layer] for kind, layer in CONTROL_LAYERS.items() if kind in wanted and layer in layers}


def diffusion_stylizer(
    pipeline: DiffusePipeline,
    params: DiffuseParams,
    *,
    on_step: Callable[[int, int], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
):
    """A grid stylizer running `pipeline` with `params` on the whole canvas."""

    def stylize(grid: np.ndarray, layers: dict[str, np.ndarray]) -> np.ndarray:
        out = pipeline(params, image=grid, maps=control_maps_for(params, layers), on_step=on_step,
                       is_cancelled=is_cancelled)
        image = out.image
        if image.shape[:2] != grid.shape[:2]:  # the model rounded the size: the grid's tiles must line up
            image = cv2.resize(image, (grid.shape[1], grid.shape[0]), interpolation=cv2.INTER_LANCZOS4)
        return image

    stylize.label = f"diffusion ({params.sampler}, {params.steps} steps, {len(params.controls)} ControlNets)"
    return stylize
