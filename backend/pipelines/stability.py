"""The stability dial: 0 = fully propagated from keyframes (steady), 1 = every frame stylized on its own
(the seed's "stroboscope"), in between a per-pixel mix. The ends return their input exactly."""

from __future__ import annotations

import numpy as np


def mix_stability(propagated: dict[str, np.ndarray], per_frame: dict[str, np.ndarray] | None, stability: float):
    """Mix the layers of one frame. `per_frame` may be None only when stability is 0."""
    if not 0.0 <= stability <= 1.0:
        raise ValueError(f"stability {stability} is outside [0, 1]")
    if stability == 0.0:
        return propagated
    if per_frame is None:
        raise ValueError("stability above 0 needs the frame stylized on its own")
    if stability == 1.0:
        return per_frame
    out = {}
    for name, layer in propagated.items():
        other = per_frame.get(name)
        if other is None:
            out[name] = layer  # a layer the per-frame path does not make (e.g. depth) stays propagated
            continue
        if other.shape != layer.shape:
            raise ValueError(f"layer {name}: propagated {layer.shape} and per-frame {other.shape} differ")
        mixed = (1.0 - stability) * layer.astype(np.float32) + stability * other.astype(np.float32)
        out[name] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8) if layer.dtype == np.uint8 else mixed
    return out
