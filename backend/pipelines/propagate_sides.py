"""One side of a propagated frame: a keyframe as it is kept ready to warp (KeyView), warped to frame t with its
trust (Side), and the flow arithmetic a side is made with: the gap's chains of consecutive-frame flows, the appearance
mismatch, the per-pixel choice between the direct and the chained flow, and where each flow estimate starts
(FlowStarts). backend/pipelines/propagate.py's Propagator makes the sides (its docstring explains the starts)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from backend.pipelines import ink_model, ink_pairs
from backend.pipelines.colour_model import KeyModel
from backend.pipelines.flow import DisFlow, compose, sample_map, upscale_flow, warp


ANALYSIS_WIDTH = 480  # the appearance check runs at most this wide
CHECK_WIDTH = 240  # the forward-backward occlusion check (and its reverse flows) at most this wide
# The reverse flows are coarse (at most a quarter of 960 px, the cheapest preset), so the check only calls gross
# inconsistency an occlusion: with the textbook tolerance their noise made visibility flicker from frame to
# frame (bench/propagate.py: warp error 1.19 x source with slack 1, 1.15 with 4, 1.11 with 16).
FB_SLACK = 16.0
CHAIN_WIDTH = 120  # the gap's consecutive-frame flow chain (a starting guess) runs at most this wide
MISMATCH_BLUR = 5  # pixels (at analysis size) over which appearance mismatch is averaged
# Grey levels by which the gap's chained flow must rebuild frame t better than the direct one to be taken
# (`closer_flow`). bench/propagate_real.py, bikes pixel-wise / toon against the direct flow alone (49.19 /
# 28.86 dB) and the Blender clip's (51.37 / 22.75), with the forward-backward check then on the chosen flow: at 0,
# 49.64 / 29.05 and 51.34 / 22.72; at 1, 49.53 / 28.97 and 51.36 / 22.74; at 3, 49.36 / 28.90 and 51.37 / 22.75.
# With the check on the direct flow (as now), at 1: 49.61 / 28.97 and 51.36 / 22.75.
CHAIN_MARGIN = 1.0


@dataclass
class KeyView:
    greys: tuple[np.ndarray, np.ndarray, np.ndarray]  # at the work, analysis and check sizes (see Propagator._greys)
    layers: dict[str, np.ndarray]                     # as warped: colour float32 (guided: the model's residual)
    model: KeyModel | None = None                     # guided only
    carried_ink: np.ndarray | None = None             # a loose-ink style (see `assent_weight`): its literal's weight plane
    ink_pairs: ink_pairs.PairModel | None = None      # ... and where it inks, by colour pair, if that agrees
    # guided: whether any pixel's colour is carried as it is (model.literal's weight); a pixel-wise style has none,
    # and then no literal colour is sampled at all (a fifth of a frame's CPU time, for nothing)
    carries_literal: bool = False
    detail: np.ndarray | None = None  # guided: how much of the residual is detail, 0..1, at the analysis size


@dataclass
class Side:
    layers: dict[str, np.ndarray]  # warped to t: colour float32 (rounded once, after the blend), the rest float32
    weight: np.ndarray             # HxW float32 > 0: this side's share in the blend, relative to the other's
    coeffs: np.ndarray | None = None      # guided: the colour model warped to t (analysis size)
    small_weight: np.ndarray | None = None  # guided: `weight` at analysis size
    confidence: np.ndarray | None = None    # guided: visibility x appearance at analysis size, in [0, 1]
    by_colour: np.ndarray | None = None     # guided: the keyframe's by-colour model (colour_model.fit_by_colour)
    closeness: float = 1.0
    literal: np.ndarray | None = None       # confidence: unused; see `view` and `coords`
    view: KeyView | None = None            # guided: the keyframe's residual and literal colour, sampled at
    coords: tuple[np.ndarray, np.ndarray] | None = None  # ... these full-size coordinates where the side is chosen
    ink: ink_model.InkModel | None = None   # guided, a style with ink: where the keyframe's style draws it
    ink_gate: np.ndarray | None = None      # ... 1 within ink_model.GATE px of the keyframe's ink carried to t
    ink_colour: np.ndarray | None = None    # ... the ink's local colour warped to t (3 planes, analysis size)
    detail: np.ndarray | None = None        # guided: the keyframe's detail (KeyView.detail) warped to t
    carried_ink: np.ndarray | None = None   # a loose-ink style: its literal's weight carried to t (nearest, full size)


def blend_weight(confidence, closeness: float):
    """A side's blend weight: confidence (in [0, 1]) times temporal closeness (1 at its keyframe, 0 at the other).
    A small floor lets time decide where neither side is trusted (content seen by neither keyframe)."""
    return (confidence + 1e-3) * closeness + 1e-6


def appearance_mismatch(key_grey: np.ndarray, coords, grey: np.ndarray) -> np.ndarray:
    """How far the keyframe's grey sampled at `coords` is from frame t's, averaged over MISMATCH_BLUR px (one noisy
    pixel is not an occlusion): float32 grey levels."""
    mismatch = cv2.absdiff(warp(key_grey, coords), grey).astype(np.float32)
    return cv2.blur(mismatch, (MISMATCH_BLUR, MISMATCH_BLUR))


def closer_flow(direct: np.ndarray, direct_coords, mismatch: np.ndarray, chained: np.ndarray, key_grey: np.ndarray,
            grey: np.ndarray):
    """(flow t -> key, its sample map at the analysis size) taken per pixel from whichever estimate rebuilds frame t
    better from the keyframe (`mismatch`: the direct one's, at the analysis size like `grey`): the direct flow
    (DIS between t and the keyframe), or the chain through the gap's consecutive frames. The direct estimate loses
    what moves far between t and the keyframe (bikes' cyclists, the Blender clip's walking figure, ~5 px a frame);
    the chain follows it frame by frame but is coarse and drifts; each is right where the other is not.
    Taken where it is better by CHAIN_MARGIN. bench/flow_real.py: warp error on the Blender figure 16.35 -> 14.06 grey
    levels, bikes 5.29 -> 4.37, bunny 4.77 -> 4.28. The side's trust (appearance and forward-backward check) stays
    the direct flow's: a flow picked for its look makes an occluded region look visible (trusted on the picked flow,
    the Blender clip ghosted the figure where it had been: -0.2 dB); checked against the reverse flow, the picked
    flow lost trust where it helped (bikes pixel-wise 49.53 against 49.61 dB, Blender toon 22.74 against 22.75,
    worst step 1.80 against 1.73)."""
    chained_coords = sample_map(chained, grey.shape[1::-1])
    # OpenCV's masked copies: the same values as np.where, several times faster on a two-channel flow.
    pick = cv2.compare(cv2.add(appearance_mismatch(key_grey, chained_coords, grey), CHAIN_MARGIN), mismatch, cv2.CMP_LT)
    coords = tuple(cv2.copyTo(c, pick, d.copy()) for c, d in zip(chained_coords, direct_coords))
    if pick.shape != direct.shape[:2]:
        pick = cv2.resize(pick, direct.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    return cv2.copyTo(chained, pick, direct.copy()), coords


def consecutive_flows(dis: DisFlow, greys: list[np.ndarray]) -> list[np.ndarray]:
    """The consecutive-frame flows greys[i] -> greys[i + 1]."""
    return [dis.raw(a, b) for a, b in itertools.pairwise(greys)]


def gap_flows(forward: list[np.ndarray], backward: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The flows `prepare_gap` returns, from the gap's chains of consecutive-frame flows."""
    back_steps = backward[::-1]  # frame prev + i + 1 -> prev + i
    flows = {"forward": composed(forward), "backward": composed(backward), "back_steps": np.stack(back_steps)}
    if len(forward) > 1:  # the gap has frames
        flows.update(first_to_next=composed(forward[1:]), next_to_first=composed(backward[:-1]))
        # Each frame's chain through the gap to either keyframe (FlowStarts.chained), frame prev + 1 first.
        to_prev, to_next = [back_steps[0]], [forward[-1]]
        for step in back_steps[1:-1]:
            to_prev.append(compose(step, to_prev[-1]))
        for step in forward[-2:0:-1]:
            to_next.append(compose(step, to_next[-1]))
        flows.update(to_prev=np.stack(to_prev), to_next=np.stack(to_next[::-1]))
    return flows


def composed(steps: list[np.ndarray]) -> np.ndarray:
    """The flow through all `steps` in order (a starting guess only): each step's flow is sampled where the
    chain so far has carried each pixel."""
    total = steps[0]
    for step in steps[1:]:
        total = compose(total, step)
    return total


class FlowStarts:
    """Where each side's flow estimate (t -> key, key -> t) starts: the flows kept from the frame before (`warm`) and
    the gap's chains (`gaps`, Propagator.prepare_gap); propagate.Propagator's docstring explains the order of the
    guesses. `estimate` runs a flow from its start and keeps it for the next frame."""

    def __init__(self):
        self.warm: dict[tuple[int, str], tuple[int, np.ndarray]] = {}  # (keyframe, direction) -> (t, flow)
        self.gaps: dict[tuple[int, int], dict[str, np.ndarray]] = {}   # (prev, next) -> key-to-key flows

    def own(self, t: int, key: int, direction: str) -> np.ndarray | None:
        """A start for flow (t -> key or key -> t) from this side alone, at the size it was kept: frame t-1's
        estimate, or on the gap's first frame the next keyframe's chain through the gap."""
        last = self.warm.get((key, direction))
        if last is not None and abs(last[0] - t) == 1:
            return last[1]
        gap = self.gaps.get((t - 1, key))
        return gap.get("first_to_next" if direction == "to_key" else "next_to_first") if gap else None

    def predicted(self, t: int, key: int, direction: str, size) -> np.ndarray | None:
        """Flow t -> key predicted from frame t-1's (see propagate.Propagator's docstring), at `size`; None without one."""
        last = self.warm.get((key, direction))
        if direction != "to_key" or last is None or last[0] != t - 1:
            return None
        for (prev, next), gap in self.gaps.items():
            steps = gap.get("back_steps")
            # Only a gap read frame by frame has a step for every frame number.
            if steps is not None and prev < t <= next and len(steps) == next - prev:
                return compose(upscale_flow(steps[t - prev - 1], size), upscale_flow(last[1], size))
        return None

    def chained(self, t: int, key: int, size) -> np.ndarray | None:
        """Flow t -> key through the gap's consecutive-frame flows (`prepare_gap`), at `size`; None without one."""
        for (prev, next), gap in self.gaps.items():
            chains = gap.get("to_prev" if key == prev else "to_next" if key == next else "")
            if chains is not None and prev < t < next and len(chains) == next - prev - 1:
                return upscale_flow(chains[t - prev - 1], size)
        return None

    def start(self, t: int, key: int, direction: str, flows: dict, size) -> np.ndarray | None:
        """Where the estimate of flow (t -> key or key -> t) starts; see propagate.Propagator's docstring."""
        own = self.own(t, key, direction)
        if own is not None:
            return upscale_flow(own, size)
        other = [k for k in flows if k != key]
        if not other:
            return None
        other = other[0]
        gap = self.gaps.get((other, key)) or self.gaps.get((key, other))
        if gap is None:
            return None
        key_to_key = gap["forward"] if other < key else gap["backward"]   # other -> key
        key_from_key = gap["backward"] if other < key else gap["forward"]  # key -> other
        if direction == "to_key":
            return compose(flows[other]["to_key"], upscale_flow(key_to_key, size))
        return compose(upscale_flow(key_from_key, size), flows[other]["from_key"])

    def estimate(self, estimator, t: int, key: int, direction: str, a: np.ndarray, b: np.ndarray,
                  flows: dict) -> np.ndarray:
        if not isinstance(estimator, DisFlow):
            flow = estimator(a, b)
        else:
            predicted = self.predicted(t, key, direction, a.shape[1::-1])
            if predicted is not None:
                flow = estimator.raw(a, b, predicted, close=True)
            else:
                flow = estimator.raw(a, b, self.start(t, key, direction, flows, a.shape[1::-1]))
            self.warm[(key, direction)] = (t, flow)
        flows.setdefault(key, {})[direction] = flow
        return flow
