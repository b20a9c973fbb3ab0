"""Re-timing: drop every k-th frame and rebuild it by occlusion-aware flow interpolation (the seed's
Flowframes trick: halve the frame rate of a flickering per-frame take, then interpolate back, smoothing it).

A dropped frame at time alpha between kept frames A and B is rebuilt from both. The flow A->B is splatted
forward to time alpha (each pixel of A moves alpha of its way), giving for each pixel of the new frame
where it lies in A; likewise from B. Where pixels of A collide (something passes in front of something
else) the one whose flow is forward-backward consistent, i.e. still visible in B, wins; a pixel that no
pixel of A reaches is content A does not show (uncovered on the way), so B alone fills it, and the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from backend.params import param
from backend.pipelines.flow import DisFlow, fb_confidence, sample_map, to_grey, warp


@dataclass
class RetimeParams:
    drop_every: int = param(2, min=2, max=100, help="drop every k-th frame (2 halves the rate) and rebuild it")
    flow_preset: str = param("medium", choices=["ultrafast", "fast", "medium"], help="DIS speed/quality preset")


def dropped(count: int, drop_every: int) -> list[int]:
    """Positions (0-based) dropped from `count` frames; the first and last frames are always kept."""
    return [i for i in range(1, count - 1) if i % drop_every == drop_every - 1]


def _splat(flow_ab: np.ndarray, alpha: float, confidence: np.ndarray):
    """Flow from each pixel at time alpha back to A, and whether a pixel of A reached it."""
    height, width = flow_ab.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    px = (xs + alpha * flow_ab[..., 0]).ravel()
    py = (ys + alpha * flow_ab[..., 1]).ravel()
    back = (-alpha * flow_ab).reshape(-1, 2)
    priority = confidence.ravel()
    targets, values, ranks = [], [], []
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):  # the four pixels around the landing point: no cracks
        tx = np.floor(px).astype(np.int64) + dx
        ty = np.floor(py).astype(np.int64) + dy
        ok = (tx >= 0) & (tx < width) & (ty >= 0) & (ty < height)
        # Exact landings rank above neighbours of a landing, then visible pixels above occluded ones.
        nearness = 1.0 - np.maximum(np.abs(px - tx), np.abs(py - ty))
        targets.append((ty * width + tx)[ok])
        values.append(back[ok])
        ranks.append((priority + 0.25 * nearness)[ok])
    target, value, rank = np.concatenate(targets), np.concatenate(values), np.concatenate(ranks)
    order = np.lexsort((rank, target))  # by target, then rank: the last of each target wins
    target, value = target[order], value[order]
    last = np.r_[target[1:] != target[:-1], True]
    flow_t = np.zeros((height * width, 2), np.float32)
    hit = np.zeros(height * width, np.float32)
    flow_t[target[last]] = value[last]
    hit[target[last]] = 1.0
    # A pixel nobody reached keeps the flow of its own place, scaled: a guess the weights barely trust.
    missing = hit == 0
    flow_t[missing] = (-alpha * flow_ab).reshape(-1, 2)[missing]
    return flow_t.reshape(height, width, 2), hit.reshape(height, width)


class Interpolator:
    def __init__(self, params: RetimeParams | None = None):
        self.params = params or RetimeParams()
        self.flow = DisFlow(self.params.flow_preset)

    def between(self, a: dict[str, np.ndarray], b: dict[str, np.ndarray], alpha: float) -> dict[str, np.ndarray]:
        """The layers at time alpha in (0, 1) between frames a and b (dicts of layers; `color` required)."""
        ga, gb = to_grey(a["color"]), to_grey(b["color"])
        f_ab, f_ba = self.flow(ga, gb), self.flow(gb, ga)
        flow_ta, hit_a = _splat(f_ab, alpha, fb_confidence(f_ab, f_ba))
        flow_tb, hit_b = _splat(f_ba, 1.0 - alpha, fb_confidence(f_ba, f_ab))
        coords_a, coords_b = sample_map(flow_ta), sample_map(flow_tb)
        # Small holes from rounding are not occlusions: close them before they steer the blend.
        kernel = np.ones((3, 3), np.uint8)
        hit_a = cv2.morphologyEx(hit_a, cv2.MORPH_CLOSE, kernel)
        hit_b = cv2.morphologyEx(hit_b, cv2.MORPH_CLOSE, kernel)
        w_a = (1.0 - alpha) * (hit_a + 1e-3)
        w_b = alpha * (hit_b + 1e-3)
        total = w_a + w_b
        out = {}
        for name in a:
            la = warp(a[name].astype(np.float32), coords_a, cv2.INTER_LINEAR)
            lb = warp(b[name].astype(np.float32), coords_b, cv2.INTER_LINEAR)
            wa, wb, tt = (w_a, w_b, total) if la.ndim == 2 else (w_a[..., None], w_b[..., None], total[..., None])
            mixed = (la * wa + lb * wb) / tt
            out[name] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8) if a[name].dtype == np.uint8 else mixed
        return out
