"""The blends a propagated frame is measured against, and the older one (Propagator's `blend` other than "guided"):
    "confidence"      both sides' warped layers blended by confidence x closeness
    "warp_crossfade"  both sides warped, blended by time only (EbSynth + an After Effects crossfade); its sides carry
                      a time-only weight (Propagator._warp_side), so it is blended here as "confidence" is
    "crossfade"       no motion at all: a dissolve between the two stylized keyframes
"""

from __future__ import annotations

import cv2
import numpy as np

from backend.pipelines.propagate_layers import finish
from backend.pipelines.propagate_sides import Side


def weighted_blend(sides: list[Side], in_parallel) -> dict[str, np.ndarray]:
    """The sides' warped layers blended by their weights ("confidence", "warp_crossfade"), in two bands of rows,
    the second run by `in_parallel` (Propagator._in_parallel) in the side thread."""
    if len(sides) == 1:
        return finish(sides[0].layers)
    first, second = sides

    def band(rows: slice) -> dict[str, np.ndarray]:
        return finish({name: cv2.blendLinear(first.layers[name][rows], second.layers[name][rows],
                                              first.weight[rows], second.weight[rows])  # (w1 a + w2 b) / (w1 + w2)
                        for name in first.layers})

    half, height = first.weight.shape[0] // 2, first.weight.shape[0]
    top, bottom = in_parallel(lambda: band(slice(0, half)), lambda: band(slice(half, height)))
    return {name: np.concatenate([top[name], bottom[name]]) for name in top}


def crossfade(t: int, prev, next) -> dict[str, np.ndarray]:
    """Frame t as a dissolve between the keyframes `prev` and `next` (propagate.Keyframe; one may be None)."""
    if prev is None or next is None:
        return {name: layer.copy() for name, layer in (prev or next).layers.items()}
    w = (t - prev.frame) / (next.frame - prev.frame)
    mixed = {name: (1 - w) * prev.layers[name].astype(np.float32) + w * next.layers[name] for name in prev.layers}
    return finish(mixed)
