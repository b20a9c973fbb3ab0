"""A matte from a rembg session (u2net, isnet, birefnet, a custom ONNX net). Colour is returned untouched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.params import param


@dataclass
class RembgParams:
    model: str = param("config", help="'config': the model config's 'matte' entry (a rembg model name or an "
                                      ".onnx path); or a rembg model name such as u2net_human_seg, isnet-general-use")
    custom_kind: str = param("u2net_custom", choices=("u2net_custom", "dis_custom"),
                             help="for a custom .onnx: the input layout rembg gives it (320² or 1024²)")
    post_process: bool = param(False, help="rembg's mask clean-up (morphology); hardens soft edges")


def rembg_alpha(session: Any, color: np.ndarray, post_process: bool = False) -> np.ndarray:
    """Float alpha in [0, 1] at the frame's size, through rembg's own remove()."""
    from rembg import remove

    if color.ndim != 3 or color.shape[2] < 3:
        raise ValueError(f"rembg_alpha expects an HxWx3 colour frame, got shape {color.shape}")
    mask = remove(np.ascontiguousarray(color[..., :3]), session=session, only_mask=True,
                  post_process_mask=post_process)
    return np.asarray(mask, dtype=np.float32) / 255.0
