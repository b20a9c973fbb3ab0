"""Propagation: rebuild every frame from its two neighbouring stylized keyframes (EbSynth's job, done better).

For a frame t between keyframes p and n, each keyframe is warped to t by optical flow estimated directly
between the *source* frames t and k (never chained frame to frame, so errors do not accumulate). Each side
gets a per-pixel confidence from
  - forward-backward consistency of the flow pair t->k, k->t (occlusions, flow failures, off-frame), and
  - how well the warped source keyframe reproduces the source frame t (appearance check),
and the two sides are blended by confidence times temporal closeness. Where one side is occluded the other
fills in; where both are unsure the temporal weights decide. Alpha and depth use the same warps and weights.

`blend` also offers the two baselines it is measured against:
    "warp_crossfade"  both sides warped, blended by time only (EbSynth + an After Effects crossfade)
    "crossfade"       no motion at all: a dissolve between the two stylized keyframes
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np

from backend.params import param
from backend.pipelines.flow import (
    DIS_PRESETS,
    DisFlow,
    compose,
    FlowParams,
    fb_confidence,
    make_flow,
    sample_map,
    shrink,
    to_grey,
    upscale_flow,
    warp,
)

BLENDS = ("confidence", "warp_crossfade", "crossfade")


@dataclass
class PropagateParams:
    blend: str = param("confidence", choices=list(BLENDS), help="how the two keyframes' contributions mix")
    flow_method: str = param("dis", choices=["dis", "raft"], help="optical flow: dis (CPU) or raft (weights needed)")
    flow_preset: str = param("balanced", choices=list(DIS_PRESETS), help="DIS preset of the flows that warp keyframes")
    check_preset: str = param("ultrafast", choices=list(DIS_PRESETS),
                              help="DIS preset of the reverse flows used only for the occlusion check")
    flow_scale: float = param(1.0, min=0.25, max=1.0, help="estimate flow at this fraction of the frame size")
    raft_weights: str = param("", help="local torchvision RAFT state dict, for flow_method=raft")
    appearance_sigma: float = param(
        10.0, min=1.0, max=255.0, help="grey levels of source mismatch at which a warped keyframe loses trust"
    )

    def flow_params(self) -> FlowParams:
        return FlowParams(self.flow_method, self.flow_preset, self.flow_scale, self.raft_weights)


@dataclass
class Keyframe:
    """A stylized keyframe: its source frame and its layers (color uint8 HxWx3; alpha, depth HxW float32)."""

    frame: int
    source: np.ndarray
    layers: dict[str, np.ndarray]

    def __post_init__(self):
        if "color" not in self.layers:
            raise ValueError(f"keyframe {self.frame} has no color layer")
        if self.layers["color"].shape != self.source.shape:
            raise ValueError(
                f"keyframe {self.frame}: stylized color is {self.layers['color'].shape}, the source frame is "
                f"{self.source.shape}; resize the stylized keyframe to the footage size"
            )
        self.grey = to_grey(self.source)


@dataclass
class _Side:
    layers: dict[str, np.ndarray]  # warped to t, float32
    confidence: np.ndarray         # HxW in [0, 1]
    closeness: float               # 1 at the keyframe, 0 at the other keyframe


class Propagator:
    """Rebuilds frames from bracketing keyframes.

    Flow is always estimated directly between frame t and a keyframe, but where it *starts* matters for
    large motion, so each estimate is started from the best guess at hand:
      - the same keyframe's flow for the previous frame (a warm start, when frames come in order), else
      - for the farther keyframe, the nearer keyframe's flow composed with the key-to-key flow of the gap.
    `prepare_gap` estimates that key-to-key flow once per gap, itself started from the chain of
    consecutive-frame flows through the gap. Flows are kept only for the two live keyframes.
    """

    def __init__(self, params: PropagateParams | None = None):
        self.params = params or PropagateParams()
        flow = self.params.flow_params()
        self.flow = make_flow(flow)
        self.check_flow = make_flow(dataclasses.replace(flow, preset=self.params.check_preset))
        self.scale = flow.scale if isinstance(self.flow, DisFlow) else 1.0
        self._keys: dict[int, np.ndarray] = {}                          # keyframe -> grey at analysis size
        self._warm: dict[tuple[int, str], tuple[int, np.ndarray]] = {}  # (keyframe, direction) -> (t, flow)
        self._gaps: dict[tuple[int, int], dict[str, np.ndarray]] = {}   # (prev, next) -> key-to-key flows

    # -- the gap between two keyframes -----------------------------------------------------------------

    def prepare_gap(self, prev: Keyframe, next: Keyframe, between: Iterable[np.ndarray]) -> dict[str, np.ndarray]:
        """Key-to-key flows of a gap; `between` are the source frames strictly inside it, in order.

        Returns {"forward": prev->next, "backward": next->prev}; keep them (they are small) and hand them
        back with `use_gap` after a restart instead of reading the gap again.
        """
        if not isinstance(self.flow, DisFlow):
            return {}
        start, end = self._key_grey(prev), self._key_grey(next)
        ahead = back = None  # chains prev -> current and current -> prev, one consecutive step at a time
        last = start
        for image in itertools.chain(between, [None]):  # one frame at a time
            grey = end if image is None else shrink(to_grey(image), self.scale)
            step, step_back = self.check_flow.raw(last, grey), self.check_flow.raw(grey, last)
            ahead = step if ahead is None else compose(ahead, step)
            back = step_back if back is None else compose(step_back, back)
            last = grey
        forward = self.flow.raw(start, end, ahead)
        backward = self.flow.raw(end, start, back)
        flows = {"forward": forward, "backward": backward}
        self.use_gap(prev.frame, next.frame, flows)
        return flows

    def use_gap(self, prev: int, next: int, flows: dict[str, np.ndarray]) -> None:
        self._gaps = {(prev, next): flows}

    # -- one frame -------------------------------------------------------------------------------------

    def frame(self, t: int, source: np.ndarray, prev: Keyframe | None, next: Keyframe | None) -> dict[str, np.ndarray]:
        """The layers of frame t from the keyframes before and after it (either may be None, not both)."""
        if prev is None and next is None:
            raise ValueError(f"frame {t} has no keyframe on either side")
        for key in (prev, next):
            if key is not None and key.frame == t:
                return {name: layer.copy() for name, layer in key.layers.items()}
        if prev is not None and next is not None and not prev.frame < t < next.frame:
            raise ValueError(f"frame {t} is not between keyframes {prev.frame} and {next.frame}")
        if self.params.blend == "crossfade":
            return self._crossfade(t, prev, next)
        live = {key.frame for key in (prev, next) if key is not None}
        self._keys = {k: v for k, v in self._keys.items() if k in live}
        self._warm = {k: v for k, v in self._warm.items() if k[0] in live}
        grey = shrink(to_grey(source), self.scale)
        keys = [key for key in (prev, next) if key is not None]
        keys.sort(key=lambda key: abs(t - key.frame))  # the nearer keyframe first: its flow starts the other's
        gap = (next.frame - prev.frame) if prev is not None and next is not None else None
        sides, flows = [], {}
        for key in keys:
            closeness = 1.0 if gap is None else 1.0 - abs(t - key.frame) / gap
            sides.append(self._warp_side(t, grey, key, closeness, source.shape[1::-1], flows))
        return self._blend(sides)

    def _key_grey(self, key: Keyframe) -> np.ndarray:
        grey = self._keys.get(key.frame)
        if grey is None:
            grey = self._keys[key.frame] = shrink(key.grey, self.scale)
        return grey

    def _start(self, t: int, key: int, direction: str, flows: dict) -> np.ndarray | None:
        """Where the estimate of flow (t -> key or key -> t) starts; see the class docstring."""
        last = self._warm.get((key, direction))
        if last is not None and abs(last[0] - t) == 1:
            return last[1]
        other = [k for k in flows if k != key]
        if not other:
            return None
        other = other[0]
        gap = self._gaps.get((other, key)) or self._gaps.get((key, other))
        if gap is None:
            return None
        key_to_key = gap["forward"] if other < key else gap["backward"]   # other -> key
        key_from_key = gap["backward"] if other < key else gap["forward"]  # key -> other
        if direction == "to_key":
            return compose(flows[other]["to_key"], key_to_key)
        return compose(key_from_key, flows[other]["from_key"])

    def _estimate(self, t: int, key: int, direction: str, a: np.ndarray, b: np.ndarray, flows: dict) -> np.ndarray:
        estimator = self.flow if direction == "to_key" else self.check_flow
        if not isinstance(estimator, DisFlow):
            flow = estimator(a, b)
        else:
            flow = estimator.raw(a, b, self._start(t, key, direction, flows))
            self._warm[(key, direction)] = (t, flow)
        flows.setdefault(key, {})[direction] = flow
        return flow

    def _warp_side(self, t: int, grey: np.ndarray, key: Keyframe, closeness: float, size, flows: dict) -> _Side:
        key_grey = self._key_grey(key)
        flow_tk = self._estimate(t, key.frame, "to_key", grey, key_grey, flows)  # each pixel of t in the key
        coords = sample_map(upscale_flow(flow_tk, size))
        layers = {}
        for name, layer in key.layers.items():
            # Cubic keeps the colour's detail through the warp; linear keeps alpha and depth within range.
            method = cv2.INTER_CUBIC if name == "color" else cv2.INTER_LINEAR
            layers[name] = warp(layer, coords, method).astype(np.float32)
        if self.params.blend == "warp_crossfade":
            flows[key.frame]["from_key"] = -flow_tk  # unused by the baseline itself; starts the other side
            return _Side(layers, np.ones(size[::-1], np.float32), closeness)
        flow_kt = self._estimate(t, key.frame, "from_key", key_grey, grey, flows)
        small_coords = sample_map(flow_tk)
        visible = fb_confidence(flow_tk, flow_kt, small_coords)
        mismatch = cv2.absdiff(warp(key_grey, small_coords), grey).astype(np.float32)
        mismatch = cv2.blur(mismatch, (5, 5))  # one noisy pixel is not an occlusion
        appearance = np.exp(-((mismatch / self.params.appearance_sigma) ** 2))
        confidence = visible * appearance
        if confidence.shape != size[::-1]:
            confidence = cv2.resize(confidence, size, interpolation=cv2.INTER_LINEAR)
        return _Side(layers, confidence, closeness)

    def _blend(self, sides: list[_Side]) -> dict[str, np.ndarray]:
        # A small floor lets time decide where neither side is trusted (content seen by neither keyframe).
        weights = [(side.confidence + 1e-3) * side.closeness + 1e-6 for side in sides]
        total = sum(weights)
        out = {}
        for name in sides[0].layers:
            acc = None
            for side, weight in zip(sides, weights):
                layer = side.layers[name]
                term = layer * (weight[..., None] if layer.ndim == 3 else weight)
                acc = term if acc is None else acc + term
            out[name] = acc / (total[..., None] if acc.ndim == 3 else total)
        return _finish(out)

    def _crossfade(self, t: int, prev: Keyframe | None, next: Keyframe | None) -> dict[str, np.ndarray]:
        if prev is None or next is None:
            return {name: layer.copy() for name, layer in (prev or next).layers.items()}
        w = (t - prev.frame) / (next.frame - prev.frame)
        return _finish({name: (1 - w) * prev.layers[name].astype(np.float32) + w * next.layers[name] for name in prev.layers})


def _finish(layers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, layer in layers.items():
        if name == "color":
            out[name] = np.clip(np.rint(layer), 0, 255).astype(np.uint8)
        elif name == "alpha":
            out[name] = np.clip(layer, 0.0, 1.0).astype(np.float32)
        else:
            out[name] = layer.astype(np.float32)
    return out


def bracket(t: int, keys: list[int]) -> tuple[int | None, int | None]:
    """The keyframes at or before and at or after t (keys sorted)."""
    import bisect

    i = bisect.bisect_left(keys, t)
    if i < len(keys) and keys[i] == t:
        return t, t
    return (keys[i - 1] if i > 0 else None), (keys[i] if i < len(keys) else None)


