"""Turning a model's raw depth into the take's depth layer, with one mapping for the whole shot.

Per-frame normalisation makes depth "breathe": when something near enters, everything else seems to
move away. Instead a fit (scale, shift) is made once from a few frames of the shot, or smoothed from
frame to frame, and applied to every frame alike.

The depth layer holds one of two things (the choice is `DepthParams.output`, fixed before any frame):
- "relative": 0 = nearest, 1 = farthest seen in the fitted frames; the png16 range is 0..1.
- "metres": distance in metres between `near` and `far`. From a relative (disparity) model that needs
  a reference depth (Blender's Z pass) to fit against; a metric model (ZoeDepth) gives metres itself.

Relative models are ambiguous up to an affine map of *disparity* (1/depth), so a reference is fitted
in disparity space: scale * raw + shift ~ 1/Z. Metric models are fitted in depth space: scale * raw + shift ~ Z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.params import ParamError, param
from backend.pipelines.depth import DISPARITY, METRIC

SAMPLES_PER_FRAME = 16384   # pixels kept per fitted frame for the relative range's percentiles
RANGE_PERCENTILES = (1.0, 99.0)
RANGE_MARGIN = 0.05         # widen the fitted range so later frames rarely clip


@dataclass
class DepthParams:
    output: str = param("relative", choices=("relative", "metres"), help="what the depth layer holds")
    near: float = param(0.1, min=0.0, help="metres: nearest distance the layer stores (png16 range)")
    far: float = param(100.0, min=0.0, help="metres: farthest distance the layer stores (png16 range)")
    align: str = param("none", choices=("none", "reference"),
                       help="reference: least-squares fit to the source's depth layer (Blender Z pass, metres)")
    fit: str = param("shot", choices=("shot", "running"),
                     help="shot: one mapping from sampled frames; running: per-frame fit, smoothed over time")
    fit_frames: int = param(5, min=1, max=64, help="frames sampled across the shot for the shot fit")
    smoothing: float = param(0.9, min=0.0, max=0.999, help="running fit: weight of the previous frames' fit")
    resolution: int | None = param(None, min=14, max=4096, help="model input size (default: the model's own)")

    def validate(self) -> None:
        if self.far <= self.near:
            raise ParamError("far", f"must be greater than near ({self.near}), got {self.far}")
        if self.align == "reference" and self.output != "metres":
            raise ParamError("align", "alignment to a reference gives scene distances: set output=metres too")


@dataclass
class DepthFit:
    """layer value = f(scale * raw + shift); f is 1/x when a disparity model's output is turned into metres."""

    scale: float
    shift: float
    invert: bool = False

    def apply(self, raw: np.ndarray, params: DepthParams) -> np.ndarray:
        mapped = self.scale * raw.astype(np.float64) + self.shift
        if self.invert:
            with np.errstate(divide="ignore"):
                mapped = np.where(mapped > 0, 1.0 / np.maximum(mapped, 1e-30), params.far)
            return np.clip(mapped, params.near, params.far).astype(np.float32)
        if params.output == "relative":
            return np.clip(mapped, 0.0, 1.0).astype(np.float32)
        return np.clip(mapped, params.near, params.far).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"fit": np.array([self.scale, self.shift, float(self.invert)], dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "DepthFit":
        scale, shift, invert = arrays["fit"].tolist()
        return cls(scale, shift, bool(invert))

    def blend(self, new: "DepthFit", keep: float) -> "DepthFit":
        """Exponential smoothing toward a new fit; `keep` is the weight of this (older) one."""
        return DepthFit(keep * self.scale + (1 - keep) * new.scale, keep * self.shift + (1 - keep) * new.shift, self.invert)


class FitAccumulator:
    """Gathers what a fit needs from frames one at a time, holding only a few numbers and samples."""

    def __init__(self, kind: str, params: DepthParams):
        self.kind, self.params = kind, params
        self.samples: list[np.ndarray] = []
        self.n = 0
        self.mean_x = self.mean_y = self.sxx = self.sxy = 0.0

    def add(self, raw: np.ndarray, reference: np.ndarray | None = None) -> None:
        if self.params.align == "reference":
            if reference is None:
                raise ValueError("align=reference needs a reference depth for every fitted frame")
            self._add_pairs(raw, reference)
        else:
            flat = raw.ravel()
            step = max(1, flat.size // SAMPLES_PER_FRAME)
            self.samples.append(flat[::step].astype(np.float64))

    def _add_pairs(self, raw: np.ndarray, reference: np.ndarray) -> None:
        ref = reference.astype(np.float64)
        valid = np.isfinite(ref) & (ref >= self.params.near) & (ref <= self.params.far)  # sky/empty is 1e10
        x = raw.astype(np.float64)[valid]
        y = (1.0 / ref[valid]) if self.kind == DISPARITY else ref[valid]
        if x.size == 0:
            return
        # Chan's pairwise update of means and centred sums: exact, and safe for tiny raw magnitudes
        n, mx, my = x.size, x.mean(), y.mean()
        sxx, sxy = ((x - mx) ** 2).sum(), ((x - mx) * (y - my)).sum()
        total = self.n + n
        dx, dy = mx - self.mean_x, my - self.mean_y
        self.sxx += sxx + dx * dx * self.n * n / total
        self.sxy += sxy + dx * dy * self.n * n / total
        self.mean_x += dx * n / total
        self.mean_y += dy * n / total
        self.n = total

    def result(self) -> DepthFit:
        if self.params.align == "reference":
            return self._least_squares()
        if self.params.output == "metres":
            if self.kind != METRIC:
                raise ValueError(
                    "this depth model predicts relative disparity, which has no scale in metres: "
                    "set align=reference (with a depth layer in the source), output=relative, or use a metric model"
                )
            return DepthFit(1.0, 0.0)
        return self._relative_range()

    def _least_squares(self) -> DepthFit:
        if self.n < 2 or self.sxx <= 0:
            raise ValueError(
                f"the reference depth has no usable pixels between near={self.params.near} and far={self.params.far} m "
                "(or the prediction is flat there); check the depth layer and the near/far range"
            )
        scale = self.sxy / self.sxx
        shift = self.mean_y - scale * self.mean_x
        return DepthFit(scale, shift, invert=self.kind == DISPARITY)

    def _relative_range(self) -> DepthFit:
        values = np.concatenate(self.samples) if self.samples else np.zeros(1)
        lo, hi = np.percentile(values, RANGE_PERCENTILES)
        pad = (hi - lo) * RANGE_MARGIN
        lo, hi = lo - pad, hi + pad
        span = (hi - lo) if hi > lo else 1.0
        if self.kind == DISPARITY:  # large disparity is near, so it maps to 0
            return DepthFit(-1.0 / span, hi / span)
        return DepthFit(1.0 / span, -lo / span)


def frame_fit(kind: str, params: DepthParams, raw: np.ndarray, reference: np.ndarray | None = None) -> DepthFit:
    """The fit one frame alone gives (what the running fit smooths)."""
    acc = FitAccumulator(kind, params)
    acc.add(raw, reference)
    return acc.result()


def next_running_fit(prior: DepthFit, kind: str, params: DepthParams, raw: np.ndarray,
                     reference: np.ndarray | None = None) -> DepthFit:
    """Follow a model whose scale drifts over a shot, without the frame-to-frame jitter of per-frame fits."""
    return prior.blend(frame_fit(kind, params, raw, reference), params.smoothing)
